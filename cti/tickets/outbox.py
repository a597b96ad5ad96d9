"""The notification outbox: rows written in the same transaction as the change they announce,
delivered later (e-mail, webhook) with retries by :func:`deliver_due`.

One row per (event, recipient, channel): ``dedupe_key`` is unique, and inserts that meet an
existing key do nothing, so two schedulers or a retried transaction never notify twice.
Two dispatchers never send the same row at once: a row is claimed by a conditional UPDATE
(``WHERE id = :id AND next_attempt_at = :seen``) that pushes ``next_attempt_at`` past a lease.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Protocol

import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker

from cti.db.tables import notifications
from cti.tickets.org import Person

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=5)
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=1)


class Sender(Protocol):
    async def send(self, channel: str, recipient: str, subject: str, body: dict[str, Any]) -> None: ...


def retry_delay(attempts: int) -> timedelta:
    """Back-off after the ``attempts``-th failure: 30 s, 60 s, 120 s, ... capped at 1 h."""
    return min(FIRST_RETRY * (2 ** max(0, attempts - 1)), MAX_RETRY)


def rows_for(person: Person | None, event: dict[str, Any], *, subject: str, key: str, now: datetime) -> list[dict[str, Any]]:
    """Outbox rows announcing ``event`` to ``person`` on each channel they have (none: no rows)."""
    if person is None:
        return []
    body = json.dumps(event, ensure_ascii=False, default=str, separators=(",", ":"))
    subject = " ".join(subject.split())[:200]
    out = []
    for channel, recipient in (("email", person.email), ("webhook", person.webhook_url)):
        if recipient:
            out.append({"channel": channel, "recipient": recipient, "subject": subject, "body": body,
                        "dedupe_key": f"{key}:{channel}:{recipient}"[:500], "status": "pending", "attempts": 0,
                        "next_attempt_at": now, "created_at": now})
    return out


async def enqueue(conn: AsyncConnection, rows: Iterable[dict[str, Any]]) -> None:
    """Insert outbox rows; a row whose ``dedupe_key`` exists already is skipped."""
    rows = list(rows)
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(notifications).on_conflict_do_nothing(index_elements=["dedupe_key"])
    await conn.execute(stmt, rows)


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


async def deliver_due(sm: async_sessionmaker, sender: Sender, now: datetime, *, batch: int = 200,
                      concurrency: int = 8, max_attempts: int = MAX_ATTEMPTS) -> DeliveryReport:
    """Send every pending notification due at ``now``; failures are retried later, then given up."""
    report = DeliveryReport()
    async with sm() as session:
        conn = await session.connection()
        due = (await conn.execute(
            select(notifications).where(notifications.c.status == "pending", notifications.c.next_attempt_at <= now)
            .order_by(notifications.c.next_attempt_at, notifications.c.id).limit(batch)
        )).all()
    if not due:
        return report
    claimed = []
    async with sm() as session, session.begin():
        conn = await session.connection()
        for row in due:
            res = await conn.execute(
                update(notifications)
                .where(notifications.c.id == row.id, notifications.c.status == "pending",
                       notifications.c.next_attempt_at == row.next_attempt_at)
                .values(next_attempt_at=now + LEASE, attempts=notifications.c.attempts + 1)
            )
            if res.rowcount == 1:
                claimed.append(row)
    gate = asyncio.Semaphore(concurrency)

    async def attempt(row: Any) -> tuple[Any, str | None]:
        async with gate:
            try:
                await sender.send(row.channel, row.recipient, row.subject, json.loads(row.body))
                return row, None
            except Exception as exc:  # any delivery failure is retried, with its reason kept
                return row, f"{type(exc).__name__}: {exc}"[:500]

    results = await asyncio.gather(*(attempt(r) for r in claimed))
    async with sm() as session, session.begin():
        conn = await session.connection()
        for row, error in results:
            attempts = row.attempts + 1
            if error is None:
                values: dict[str, Any] = {"status": "sent", "sent_at": now, "last_error": None}
                report.sent += 1
            elif attempts >= max_attempts:
                values = {"status": "failed", "last_error": error}
                report.failed += 1
                log.warning("notify.gave_up", notification_id=row.id, channel=row.channel, attempts=attempts, error=error)
            else:
                values = {"next_attempt_at": now + retry_delay(attempts), "last_error": error}
                report.retried += 1
                log.info("notify.retry", notification_id=row.id, channel=row.channel, attempts=attempts, error=error)
            await conn.execute(update(notifications).where(notifications.c.id == row.id).values(**values))
    return report
