"""Campaigns: one follow-up (or a merged reason) per customer, from a CSV or a customer filter."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cti.customers.callerid import normalize
from cti.db.tables import customer_phones, customers
from cti.outbound import repository as repo


@dataclass
class CampaignResult:
    campaign_id: int
    created: int = 0
    merged: int = 0
    skipped: list[str] = field(default_factory=list)


async def customers_of_dealer(conn: AsyncConnection, dealer: str) -> list[int]:
    return list((await conn.execute(select(customers.c.id).where(customers.c.dealer == dealer)
                                    .order_by(customers.c.id))).scalars())


async def customers_from_csv(conn: AsyncConnection, text: str) -> tuple[list[int], list[str]]:
    """Rows with a ``customer_id`` or a ``phone`` column -> customer ids (and the rows not understood)."""
    ids: list[int] = []
    skipped: list[str] = []
    for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        cid = (row.get("customer_id") or "").strip()
        phone = (row.get("phone") or "").strip()
        if cid.isdigit():
            ids.append(int(cid))
            continue
        if phone:
            e164 = normalize(phone).e164
            found = (await conn.execute(select(customer_phones.c.customer_id)
                                        .where(customer_phones.c.e164 == e164))).scalar_one_or_none() if e164 else None
            if found is not None:
                ids.append(found)
                continue
        skipped.append(f"line {n}: no known customer_id or phone")
    return ids, skipped


async def run_campaign(conn: AsyncConnection, name: str, reason: str, customer_ids: list[int], *, due_at: datetime,
                       due_until: datetime | None, now: datetime, created_by: int | None = None,
                       skill: str | None = None) -> CampaignResult:
    cid = await repo.add_campaign(conn, name, reason, created_by=created_by, now=now)
    result = CampaignResult(cid)
    for customer_id in dict.fromkeys(customer_ids):
        try:
            r = await repo.add_followup(conn, customer_id, reason, now=now, due_at=due_at, due_until=due_until,
                                        source="campaign", source_key=f"campaign:{cid}:{customer_id}",
                                        campaign_id=cid, skill=skill)
        except repo.NotFound as exc:
            result.skipped.append(str(exc))
            continue
        if r.created:
            result.created += 1
        else:
            result.merged += 1
    return result
