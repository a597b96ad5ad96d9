"""Follow-ups, reasons, attempts, the do-not-call list, leads and dealers in the database.

Every function takes an ``AsyncConnection`` inside the caller's transaction and a ``now``.
One open follow-up per customer is a database fact (``open_customer_id`` is UNIQUE); a rule
firing again for the same event is a no-op (``outbound_reasons.source_key`` is UNIQUE); one
dial per follow-up at a time (``pending_attempt_id`` set only while NULL).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from sqlalchemy import and_, case, delete, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from cti.db.tables import (
    Ts,
    FOLLOWUP_OUTCOMES,
    LEAD_STATES,
    agents,
    contact_preferences,
    customer_phones,
    customers,
    dealer_contacts,
    dealers,
    do_not_call,
    org_people,
    outbound_attempts,
    outbound_campaigns,
    outbound_followups,
    outbound_lead_credits,
    outbound_leads,
    outbound_reasons,
)
from cti.outbound.attribution import Credit
from cti.outbound.policy import DialContext, OptOut

#: attempt states during which the customer's line is being (or was just) dialed
LIVE_ATTEMPT_STATES = ("pending", "queued", "connected")
#: how long a connected dial without its outcome form keeps the customer "being called"
CONNECTED_HOLD = timedelta(hours=2)
#: outcomes in which the customer was actually spoken to: they count towards the contact caps
CONTACT_OUTCOMES = ("reached", "call_back_later", "refused")


class OutboundError(Exception):
    """A refused request, worded for the agent."""


class NotFound(OutboundError):
    pass


class Forbidden(OutboundError):
    pass


class Conflict(OutboundError):
    pass


def _insert(conn: AsyncConnection, table: Any) -> Any:
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


@dataclass(frozen=True)
class AddResult:
    followup_id: int
    created: bool  # a new follow-up (else merged into the customer's open one)
    duplicate: bool  # this source_key was already recorded: nothing changed


# -- follow-ups --------------------------------------------------------------------------------
async def add_followup(conn: AsyncConnection, customer_id: int, reason: str, *, now: datetime, due_at: datetime,
                       due_until: datetime | None = None, source: str = "manual", source_key: str | None = None,
                       detail: str = "", owner_id: int | None = None, skill: str | None = None,
                       campaign_id: int | None = None) -> AddResult:
    """Create the customer's follow-up, or merge ``reason`` into the open one (earliest due time wins)."""
    if source_key is not None:
        seen = (await conn.execute(select(outbound_reasons.c.followup_id)
                                   .where(outbound_reasons.c.source_key == source_key))).scalar_one_or_none()
        if seen is not None:
            return AddResult(seen, False, True)
    if (await conn.execute(select(customers.c.id).where(customers.c.id == customer_id))).scalar_one_or_none() is None:
        raise NotFound(f"no customer {customer_id}")
    ins = _insert(conn, outbound_followups).values(
        customer_id=customer_id, open_customer_id=customer_id, status="open", due_at=due_at, due_until=due_until,
        owner_id=owner_id, skill=skill, campaign_id=campaign_id, attempts=0, created_at=now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["open_customer_id"]).returning(outbound_followups.c.id)
    new_id = (await conn.execute(ins)).scalar_one_or_none()
    created = new_id is not None
    if created:
        fid = new_id
    else:
        row = (await conn.execute(select(outbound_followups).where(
            outbound_followups.c.open_customer_id == customer_id))).one()
        fid = row.id
        f = outbound_followups
        # in SQL, not from the row read above: concurrent merges must not lose the earliest due time
        values: dict[str, Any] = {
            "updated_at": now,
            "due_at": case((f.c.due_at > due_at, literal(due_at, Ts)), else_=f.c.due_at),
            "owner_id": func.coalesce(f.c.owner_id, owner_id),
            "skill": func.coalesce(f.c.skill, skill),
        }
        if due_until is not None:
            values["due_until"] = case((or_(f.c.due_until.is_(None), f.c.due_until < due_until), literal(due_until, Ts)),
                                       else_=f.c.due_until)
        await conn.execute(update(outbound_followups).where(outbound_followups.c.id == fid).values(**values))
    ins_reason = _insert(conn, outbound_reasons).values(
        followup_id=fid, reason=reason, source=source, source_key=source_key, detail=detail, created_at=now)
    if source_key is not None:
        ins_reason = ins_reason.on_conflict_do_nothing(index_elements=["source_key"])
    await conn.execute(ins_reason)
    return AddResult(fid, created, False)


async def get_followup(conn: AsyncConnection, followup_id: int) -> Any:
    row = (await conn.execute(select(outbound_followups).where(outbound_followups.c.id == followup_id))).one_or_none()
    if row is None:
        raise NotFound(f"no follow-up {followup_id}")
    return row


async def reasons_of(conn: AsyncConnection, followup_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    ids = list(followup_ids)
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = (await conn.execute(select(outbound_reasons).where(outbound_reasons.c.followup_id.in_(ids))
                               .order_by(outbound_reasons.c.id))).all()
    for r in rows:
        out[r.followup_id].append({"reason": r.reason, "source": r.source, "detail": r.detail,
                                   "created_at": r.created_at})
    return out


def followup_dict(row: Any, reasons: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": row.id, "customer_id": row.customer_id, "status": row.status, "due_at": row.due_at,
            "due_until": row.due_until, "owner_id": row.owner_id, "skill": row.skill, "campaign_id": row.campaign_id,
            "attempts": row.attempts, "next_attempt_at": row.next_attempt_at, "outcome": row.outcome,
            "reasons": [r["reason"] for r in reasons], "reason_details": reasons, "closed_at": row.closed_at}


async def close_followup(conn: AsyncConnection, followup_id: int, *, status: str, outcome: str | None,
                         now: datetime, by: int | None) -> None:
    await conn.execute(update(outbound_followups).where(outbound_followups.c.id == followup_id).values(
        status=status, outcome=outcome, open_customer_id=None, pending_attempt_id=None, closed_at=now, closed_by=by,
        updated_at=now))


async def visible_dealer(conn: AsyncConnection, agent_id: int) -> str | None:
    """The dealer an account is a contact of (None: head-office staff)."""
    return (await conn.execute(select(dealer_contacts.c.dealer)
                               .where(dealer_contacts.c.agent_id == agent_id))).scalar_one_or_none()


def may_work(row: Any, agent_id: int, skills: Iterable[str]) -> bool:
    """May this (staff) agent preview or dial the follow-up ``row``: its owner, or one of the
    group it is for (its skill; an unowned follow-up without a skill is anyone's)."""
    skills = set(skills)
    if row.owner_id == agent_id:
        return True
    if row.skill is not None:
        return row.skill in skills
    return row.owner_id is None


async def due_followups(conn: AsyncConnection, *, agent_id: int, skills: Iterable[str], now: datetime,
                        scope: Any = None, limit: int = 20, include_future: bool = False) -> list[Any]:
    """Open follow-ups in the agent's queue (theirs, or unowned in one of their skills or none), due
    first; for a dealer contact's ``scope`` (:class:`cti.customers.scope.Scope`): every open
    follow-up of its dealer's customers."""
    f = outbound_followups
    cond = [f.c.status == "open"]
    if not include_future:
        cond.append(f.c.due_at <= now)
    skills = list(skills)
    mine = or_(f.c.owner_id == agent_id,
               and_(f.c.owner_id.is_(None), or_(f.c.skill.is_(None), f.c.skill.in_(skills) if skills else False)))
    q = select(f).where(*cond)
    q = q.where(scope.where(f.c.customer_id)) if scope is not None and scope.is_dealer else q.where(mine)
    return list((await conn.execute(q.order_by(f.c.due_at, f.c.id).limit(limit))).all())


# -- dial time ---------------------------------------------------------------------------------
async def customer_phones_of(conn: AsyncConnection, customer_id: int) -> list[str]:
    return list((await conn.execute(select(customer_phones.c.e164).where(customer_phones.c.customer_id == customer_id)
                                    .order_by(customer_phones.c.id))).scalars())


async def dial_context(conn: AsyncConnection, followup_id: int, phone_e164: str | None, *, now: datetime,
                       lookback: timedelta = timedelta(days=400)) -> DialContext:
    """Read everything the policy needs, fresh, for dialing ``phone_e164`` for this follow-up."""
    row = await get_followup(conn, followup_id)
    reasons = (await reasons_of(conn, [followup_id]))[followup_id]
    owner = None
    if phone_e164 is not None:
        owner = (await conn.execute(select(customer_phones.c.customer_id)
                                    .where(customer_phones.c.e164 == phone_e164))).scalar_one_or_none()
    a = outbound_attempts
    contacts = tuple((await conn.execute(select(a.c.started_at).where(
        a.c.customer_id == row.customer_id, a.c.contact.is_(True), a.c.started_at > now - lookback))).scalars())
    live = (await conn.execute(select(func.count()).select_from(a).where(
        a.c.customer_id == row.customer_id,
        or_(a.c.status.in_(("pending", "queued")),
            and_(a.c.status == "connected", a.c.started_at > now - CONNECTED_HOLD))))).scalar_one()
    dnc = do_not_call
    numbers = [phone_e164] if phone_e164 else []
    opt_rows = (await conn.execute(select(dnc).where(or_(dnc.c.customer_id == row.customer_id,
                                                         dnc.c.e164.in_(numbers) if numbers else False)))).all()
    opt_outs = tuple(OptOut(o.recorded_at, o.recorded_by, o.reason, None if o.customer_id is not None and o.e164 is None
                            else o.e164) for o in opt_rows)
    pref = (await conn.execute(select(contact_preferences)
                               .where(contact_preferences.c.customer_id == row.customer_id))).one_or_none()
    hours = json.loads(pref.hours) if pref is not None and pref.hours else None
    return DialContext(followup_id=row.id, customer_id=row.customer_id, status=row.status, due_at=row.due_at,
                       reasons=tuple(r["reason"] for r in reasons), attempts=row.attempts,
                       next_attempt_at=row.next_attempt_at, phone_e164=phone_e164, phone_owner_id=owner,
                       contacts=contacts, opt_outs=opt_outs, dial_in_progress=live > 0,
                       customer_timezone=pref.timezone if pref is not None else None, customer_hours=hours or None)


async def start_attempt(conn: AsyncConnection, ctx: DialContext, *, agent_id: int, now: datetime) -> int:
    """Record the dial and claim the follow-up's single pending slot (Conflict if another dial holds it)."""
    assert ctx.phone_e164 is not None
    attempt_id = (await conn.execute(outbound_attempts.insert().values(
        followup_id=ctx.followup_id, customer_id=ctx.customer_id, agent_id=agent_id, phone_e164=ctx.phone_e164,
        reasons=", ".join(ctx.reasons), status="pending", contact=False, started_at=now,
    ).returning(outbound_attempts.c.id))).scalar_one()
    res = await conn.execute(update(outbound_followups).where(
        outbound_followups.c.id == ctx.followup_id, outbound_followups.c.status == "open",
        outbound_followups.c.pending_attempt_id.is_(None)).values(pending_attempt_id=attempt_id, updated_at=now))
    if res.rowcount != 1:
        raise Conflict(f"follow-up {ctx.followup_id} is being dialed already")
    return attempt_id


async def get_attempt(conn: AsyncConnection, attempt_id: int) -> Any:
    row = (await conn.execute(select(outbound_attempts).where(outbound_attempts.c.id == attempt_id))).one_or_none()
    if row is None:
        raise NotFound(f"no call attempt {attempt_id}")
    return row


async def set_attempt(conn: AsyncConnection, attempt_id: int, **values: Any) -> None:
    await conn.execute(update(outbound_attempts).where(outbound_attempts.c.id == attempt_id).values(**values))


async def fail_attempt(conn: AsyncConnection, attempt_id: int, failure: str, now: datetime) -> None:
    """The Originate did not reach the customer (agent's phone, PBX refusal): free the slot, no attempt counted."""
    row = await get_attempt(conn, attempt_id)
    if row.status not in LIVE_ATTEMPT_STATES:
        return
    await set_attempt(conn, attempt_id, status="failed", failure=failure[:500], ended_at=now)
    await conn.execute(update(outbound_followups).where(outbound_followups.c.pending_attempt_id == attempt_id)
                       .values(pending_attempt_id=None, updated_at=now))


async def release_stale(conn: AsyncConnection, *, older_than: datetime, now: datetime) -> int:
    """Dials never confirmed by the PBX (lost OriginateResponse) are failed so the follow-up can be dialed again."""
    a = outbound_attempts
    ids = list((await conn.execute(select(a.c.id).where(a.c.status.in_(("pending", "queued")),
                                                        a.c.started_at < older_than))).scalars())
    for i in ids:
        await fail_attempt(conn, i, "no answer from the PBX", now)
    # a call whose outcome form was never sent: free its follow-up (the form can still be sent later)
    forgotten = select(a.c.id).where(a.c.status == "connected", a.c.started_at < now - CONNECTED_HOLD)
    await conn.execute(update(outbound_followups).where(outbound_followups.c.pending_attempt_id.in_(forgotten))
                       .values(pending_attempt_id=None, updated_at=now))
    return len(ids)


async def set_preferences(conn: AsyncConnection, customer_id: int, *, timezone_name: str | None,
                          hours: dict[str, str] | None, now: datetime) -> None:
    """When the customer may be called: their zone and weekday hours (validated here)."""
    from zoneinfo import ZoneInfo

    from cti.routing.hours import parse_hours

    if timezone_name:
        try:
            ZoneInfo(timezone_name)
        except Exception:
            raise OutboundError(f"timezone: unknown zone {timezone_name!r}") from None
    try:
        parse_hours(hours or {})
    except ValueError as exc:
        raise OutboundError(f"hours: {exc}") from None
    values = {"timezone": timezone_name, "hours": json.dumps(hours or {}), "updated_at": now}
    await conn.execute(_insert(conn, contact_preferences).values(customer_id=customer_id, **values)
                       .on_conflict_do_update(index_elements=["customer_id"], set_=values))


# -- do-not-call -------------------------------------------------------------------------------
async def add_dnc(conn: AsyncConnection, *, customer_id: int | None, e164: str | None, reason: str, recorded_by: str,
                  recorded_by_id: int | None, now: datetime) -> int:
    if customer_id is None and e164 is None:
        raise OutboundError("do-not-call: a customer or a number is required")
    return (await conn.execute(do_not_call.insert().values(
        customer_id=customer_id, e164=e164, reason=reason, recorded_by=recorded_by, recorded_by_id=recorded_by_id,
        recorded_at=now).returning(do_not_call.c.id))).scalar_one()


async def list_dnc(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = (await conn.execute(select(do_not_call).order_by(do_not_call.c.id))).all()
    return [{"id": r.id, "customer_id": r.customer_id, "e164": r.e164, "reason": r.reason,
             "recorded_by": r.recorded_by, "recorded_at": r.recorded_at} for r in rows]


async def remove_dnc(conn: AsyncConnection, dnc_id: int) -> bool:
    return (await conn.execute(delete(do_not_call).where(do_not_call.c.id == dnc_id))).rowcount == 1


# -- leads and dealers -------------------------------------------------------------------------
async def add_lead(conn: AsyncConnection, *, customer_id: int, dealer: str | None, need: str, found_by: int | None,
                   followup_id: int | None, attempt_id: int | None, credits: list[Credit], now: datetime) -> int:
    lead_id = (await conn.execute(outbound_leads.insert().values(
        customer_id=customer_id, dealer=dealer, followup_id=followup_id, attempt_id=attempt_id, found_by=found_by,
        need=need, status="new", result="", created_at=now, updated_at=now).returning(outbound_leads.c.id))).scalar_one()
    if credits:
        await conn.execute(outbound_lead_credits.insert(), [
            {"lead_id": lead_id, "party_kind": c.party_kind, "party": c.party, "share": c.share, "rule": c.rule}
            for c in credits])
    return lead_id


async def list_leads(conn: AsyncConnection, *, dealer: str | None = None, lead_id: int | None = None,
                     limit: int = 200) -> list[dict[str, Any]]:
    q = select(outbound_leads, customers.c.family_name, customers.c.given_name, customers.c.title).join(
        customers, customers.c.id == outbound_leads.c.customer_id)
    if dealer is not None:
        q = q.where(outbound_leads.c.dealer == dealer)
    if lead_id is not None:
        q = q.where(outbound_leads.c.id == lead_id)
    rows = (await conn.execute(q.order_by(outbound_leads.c.id.desc()).limit(limit))).all()
    credits: dict[int, list[dict[str, Any]]] = {r.id: [] for r in rows}
    if rows:
        for c in (await conn.execute(select(outbound_lead_credits).where(
                outbound_lead_credits.c.lead_id.in_(list(credits))))).all():
            credits[c.lead_id].append({"party_kind": c.party_kind, "party": c.party, "share": c.share, "rule": c.rule})
    return [{"id": r.id, "customer_id": r.customer_id, "customer": f"{r.family_name}{r.given_name} {r.title}".strip(),
             "dealer": r.dealer, "need": r.need, "status": r.status, "result": r.result, "found_by": r.found_by,
             "followup_id": r.followup_id, "attempt_id": r.attempt_id, "created_at": r.created_at,
             "updated_at": r.updated_at, "credits": credits[r.id]} for r in rows]


async def update_lead(conn: AsyncConnection, lead_id: int, *, status: str, result: str, now: datetime) -> None:
    if status not in LEAD_STATES:
        raise OutboundError(f"status: one of {', '.join(LEAD_STATES)}")
    res = await conn.execute(update(outbound_leads).where(outbound_leads.c.id == lead_id)
                             .values(status=status, result=result, updated_at=now))
    if res.rowcount != 1:
        raise NotFound(f"no lead {lead_id}")


async def add_dealer(conn: AsyncConnection, code: str, name: str = "", territory: str = "", *, now: datetime) -> int:
    return (await conn.execute(dealers.insert().values(code=code, name=name, territory=territory, created_at=now)
                               .returning(dealers.c.id))).scalar_one()


async def add_dealer_contact(conn: AsyncConnection, agent_id: int, dealer: str, *, now: datetime) -> None:
    if (await conn.execute(select(dealers.c.id).where(dealers.c.code == dealer))).scalar_one_or_none() is None:
        raise NotFound(f"no dealer {dealer!r}")
    await conn.execute(_insert(conn, dealer_contacts).values(agent_id=agent_id, dealer=dealer, created_at=now)
                       .on_conflict_do_update(index_elements=["agent_id"], set_={"dealer": dealer}))


async def finder_is_expert(conn: AsyncConnection, agent_id: int) -> bool:
    """An expert: an experienced agent or a back-office engineer of the org chart."""
    exp = (await conn.execute(select(agents.c.experienced).where(agents.c.id == agent_id))).scalar_one_or_none()
    eng = (await conn.execute(select(org_people.c.engineer).where(org_people.c.agent_id == agent_id))).scalar_one_or_none()
    return bool(exp) or bool(eng)


async def add_campaign(conn: AsyncConnection, name: str, reason: str, *, created_by: int | None, now: datetime) -> int:
    return (await conn.execute(outbound_campaigns.insert().values(name=name, reason=reason, created_by=created_by,
                                                                 created_at=now).returning(outbound_campaigns.c.id))).scalar_one()


def check_outcome(outcome: str) -> None:
    if outcome not in FOLLOWUP_OUTCOMES:
        raise OutboundError(f"outcome: one of {', '.join(FOLLOWUP_OUTCOMES)}")
