"""Escalation of 10,000 overdue tickets in one scheduler pass, on SQLite and PostgreSQL, timed against
a same-run baseline.

Run: python bench/escalation_bench.py [--tickets 10000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Each run builds a fresh database with the demo org, bulk-inserts N open tickets whose deadline passed,
and times:
- ``paged``: cti's pass (cti.tickets.escalation.escalate_overdue): pages of 500 rows, one
  ``WITH v(...) AS (VALUES ...) UPDATE ... FROM v ... RETURNING`` per page, bulk history and outbox inserts;
- ``per-row``: the baseline a straightforward implementation would do: one transaction per ticket
  (conditional UPDATE, history row, outbox row);
- ``idle``: the next pass, when nothing is overdue (the index scan every interval costs).
Prints seconds and the ratio; no pass/fail threshold (the unit tests make no timing assertions).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
from sqlalchemy import func, select, update

from cti.db.engine import create_engine, sessionmaker
from cti.db.schema import init_schema
from cti.db.tables import notifications, ticket_history, tickets
from cti.tickets import outbox
from cti.tickets.escalation import TICKETS, escalate_overdue
from cti.tickets.org import load_chart
from cti.tickets.repository import SYSTEM, add_history, history_entry
from cti.tickets.sla import SlaPolicy
from cti.tickets.testing import build_demo_org

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


async def seed(url: str, n: int):
    engine = create_engine(url)
    await init_schema(engine)
    sm = sessionmaker(engine)
    async with sm() as s, s.begin():
        conn = await s.connection()
        org = await build_demo_org(conn, T0 - timedelta(days=2))
        rows = [dict(customer_id=org.customer, category="complaint", product_line="appliances", description=f"c{i}",
                     status="open", owner_id=org.agent, sla_deadline=T0 - timedelta(seconds=i % 3600 + 1),
                     created_at=T0 - timedelta(days=1), updated_at=T0 - timedelta(days=1), escalation_level=0)
                for i in range(n)]
        for start in range(0, n, 2000):
            await conn.execute(tickets.insert(), rows[start:start + 2000])
    return engine, sm, org


async def per_row(sm, policy: SlaPolicy, now: datetime) -> int:
    """The baseline: one small transaction per overdue ticket."""
    async with sm() as s:
        conn = await s.connection()
        chart = await load_chart(conn)
        due = (await conn.execute(select(tickets.c.id, tickets.c.owner_id, tickets.c.sla_deadline, tickets.c.category,
                                         tickets.c.product_line)
                                  .where(tickets.c.status.in_(("open", "reopened")), tickets.c.sla_deadline <= now))).all()
    done = 0
    for row in due:
        target = chart.escalation_target(row.owner_id, row.product_line)
        async with sm() as s, s.begin():
            conn = await s.connection()
            res = await conn.execute(update(tickets).where(tickets.c.id == row.id, tickets.c.sla_deadline == row.sla_deadline)
                                     .values(owner_id=target, sla_deadline=policy.deadline(row.category, now),
                                             escalation_level=tickets.c.escalation_level + 1, escalated_at=now,
                                             updated_at=now))
            if res.rowcount == 1:
                done += 1
                await add_history(conn, [history_entry(row.id, SYSTEM, "escalated", now, from_owner_id=row.owner_id,
                                                       to_owner_id=target)])
                await outbox.enqueue(conn, outbox.rows_for(chart.get(target), {"ticket_id": row.id}, subject="x",
                                                           key=f"ticket:{row.id}:esc:{row.sla_deadline}", now=now))
    return done


async def run_one(label: str, url_factory, n: int) -> None:
    policy = SlaPolicy()
    results = {}
    for mode in ("paged", "per-row"):
        url, cleanup = await url_factory()
        engine, sm, org = await seed(url, n)
        try:
            t = time.perf_counter()
            if mode == "paged":
                report = await escalate_overdue(sm, TICKETS, policy, T0)
                done = report.escalated
            else:
                done = await per_row(sm, policy, T0)
            results[mode] = time.perf_counter() - t
            async with sm() as s:
                hist = (await s.execute(select(func.count()).select_from(ticket_history)
                                        .where(ticket_history.c.action == "escalated"))).scalar()
                mails = (await s.execute(select(func.count()).select_from(notifications))).scalar()
            assert done == n and hist == n and mails == n, (mode, done, hist, mails)
            if mode == "paged":
                t = time.perf_counter()
                idle = await escalate_overdue(sm, TICKETS, policy, T0 + timedelta(minutes=1))
                results["idle"] = time.perf_counter() - t
                assert idle.escalated == 0
        finally:
            await engine.dispose()
            await cleanup()
    print(f"{label:<10} {n} overdue tickets: paged {results['paged']:.2f} s ({n / results['paged']:.0f}/s), "
          f"per-row baseline {results['per-row']:.2f} s, ratio {results['per-row'] / results['paged']:.1f}x; "
          f"idle pass {results['idle'] * 1000:.1f} ms")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=10_000)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin URL ('' skips PostgreSQL)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cti-esc-bench-"))

    async def sqlite_url():
        path = tmp / f"{uuid.uuid4().hex}.db"

        async def cleanup() -> None:
            for p in tmp.glob(path.name + "*"):
                p.unlink()

        return f"sqlite+aiosqlite:///{path}", cleanup

    async def pg_url():
        name = "cti_bench_" + uuid.uuid4().hex[:10]
        admin = await asyncpg.connect(args.pg)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()

        async def cleanup() -> None:
            c = await asyncpg.connect(args.pg)
            await c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await c.close()

        base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        return f"{base}/{name}", cleanup

    await run_one("sqlite", sqlite_url, args.tickets)
    if args.pg:
        await run_one("postgresql", pg_url, args.tickets)


if __name__ == "__main__":
    asyncio.run(main())
