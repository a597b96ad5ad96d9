"""Escalation of overdue tickets and KB questions, in batches, idempotent, safe with concurrent schedulers.

A pass selects rows still waiting for an answer whose ``sla_deadline`` has passed (keyset
pages ordered by deadline, id), works out each one's next owner from the org chart, and moves
them in one statement per page::

    WITH v(id, seen, old_owner, new_owner, new_deadline, step) AS (VALUES ...)
    UPDATE tickets SET owner_id = v.new_owner, sla_deadline = v.new_deadline, ...
    FROM v WHERE tickets.id = v.id AND tickets.sla_deadline = v.seen AND <owner unchanged> ...
    RETURNING tickets.id

Only rows whose deadline is still the one that was seen change, so a deadline escalates once,
whatever the number of schedulers (the loser's UPDATE re-checks the row after the winner's
commit and finds a new deadline). History and notifications are written in the same
transaction for the rows that changed; bus events go out after the commit.

At the top of the chain (no active manager) the owner stays, the deadline restarts and the
owner gets a reminder (``*.sla_breached``): the ticket never falls out of sight.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

import structlog
from sqlalchemy import Table, and_, or_, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from cti.db.tables import Ts, kb_questions, tickets
from cti.tickets import outbox, topics
from cti.tickets.org import OrgChart, load_chart
from cti.tickets.repository import SYSTEM, add_history, history_entry, iso
from cti.tickets.sla import SlaPolicy
from cti.tickets.states import AWAITING_ANSWER

log = structlog.get_logger(__name__)

#: Rows per UPDATE (6 parameters each: well under both databases' parameter limits).
PAGE = 500


@dataclass(frozen=True)
class Escalatable:
    kind: str
    table: Table
    statuses: tuple[str, ...]
    escalated_topic: str
    breached_topic: str
    deadline: Callable[[SlaPolicy, Any, datetime], datetime]


TICKETS = Escalatable("ticket", tickets, AWAITING_ANSWER, topics.TICKET_ESCALATED, topics.TICKET_SLA_BREACHED,
                      lambda policy, row, now: policy.deadline(row.category, now))
QUESTIONS = Escalatable("question", kb_questions, ("open",), topics.KB_QUESTION_ESCALATED,
                        topics.KB_QUESTION_SLA_BREACHED, lambda policy, row, now: policy.question_deadline(now))


@dataclass
class EscalationReport:
    escalated: int = 0
    reminded: int = 0
    #: overdue rows another scheduler (or a person) changed first
    lost: int = 0
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list, repr=False)


@functools.lru_cache(maxsize=64)
def _update_sql(table: str, statuses: tuple[str, ...], n: int, dialect: str) -> str:
    """The page UPDATE at the driver level (positional parameters: 6 per row, then ``now`` twice).

    Built once per (table, page size, dialect); SQLAlchemy's compile and cache-key work on a few
    thousand bind parameters would cost more than the database work itself.
    """
    pg = dialect == "postgresql"
    counter = iter(range(1, 6 * n + 3))

    def p(sqltype: str) -> str:
        return f"CAST(${next(counter)} AS {sqltype})" if pg else "?"

    rows = ", ".join(
        f"({p('INTEGER')}, {p('TIMESTAMP WITH TIME ZONE')}, {p('INTEGER')}, {p('INTEGER')}, "
        f"{p('TIMESTAMP WITH TIME ZONE')}, {p('INTEGER')})" for _ in range(n))
    now1, now2 = p("TIMESTAMP WITH TIME ZONE"), p("TIMESTAMP WITH TIME ZONE")
    states = ", ".join(f"'{s}'" for s in statuses)
    t = table
    return (
        f"WITH v (id, seen, old_owner, new_owner, new_deadline, step) AS (VALUES {rows}) "
        f"UPDATE {t} SET owner_id = v.new_owner, sla_deadline = v.new_deadline, "
        f"escalation_level = {t}.escalation_level + v.step, "
        f"escalated_at = CASE WHEN v.step > 0 THEN {now1} ELSE {t}.escalated_at END, updated_at = {now2} "
        f"FROM v WHERE {t}.id = v.id AND {t}.sla_deadline = v.seen AND {t}.status IN ({states}) "
        f"AND ({t}.owner_id = v.old_owner OR ({t}.owner_id IS NULL AND v.old_owner IS NULL)) "
        f"RETURNING {t}.id, {t}.escalation_level"
    )


def _ts_binder(dialect: Any) -> Callable[[datetime], Any]:
    """How SQLAlchemy stores a ``Ts`` value on this dialect (naive UTC text on SQLite), for driver-level SQL."""
    proc = Ts().dialect_impl(dialect).bind_processor(dialect)
    return proc if proc is not None else (lambda v: v)


async def escalate_overdue(sm: async_sessionmaker, spec: Escalatable, policy: SlaPolicy, now: datetime, *,
                           page: int = PAGE, chart: OrgChart | None = None) -> EscalationReport:
    """Escalate every row of ``spec`` overdue at ``now``; returns counts and the bus events to publish."""
    t = spec.table
    report = EscalationReport()
    after: tuple[datetime, int] | None = None
    cols = [t.c.id, t.c.owner_id, t.c.sla_deadline, t.c.escalation_level, t.c.product_line,
            t.c.customer_id, *( [t.c.category] if spec is TICKETS else [t.c.question, t.c.asked_by])]
    while True:
        async with sm() as session:
            conn = await session.connection()
            if chart is None:
                chart = await load_chart(conn)
            q = select(*cols).where(t.c.status.in_(spec.statuses), t.c.sla_deadline <= now)
            if after is not None:
                q = q.where(or_(t.c.sla_deadline > after[0], and_(t.c.sla_deadline == after[0], t.c.id > after[1])))
            batch = (await conn.execute(q.order_by(t.c.sla_deadline, t.c.id).limit(page))).all()
        if not batch:
            break
        after = (batch[-1].sla_deadline, batch[-1].id)
        plans = {}
        for row in batch:
            target = chart.escalation_target(row.owner_id, row.product_line)
            new_owner, step = (target, 1) if target is not None else (row.owner_id, 0)
            plans[row.id] = (row, new_owner, step, spec.deadline(policy, row, now))
        async with sm() as session, session.begin():
            conn = await session.connection()
            ts = _ts_binder(conn.dialect)
            params: list[Any] = []
            for rid, (row, new_owner, step, deadline) in plans.items():
                params += [rid, ts(row.sla_deadline), row.owner_id, new_owner, ts(deadline), step]
            params += [ts(now), ts(now)]
            sql = _update_sql(t.name, spec.statuses, len(batch), conn.dialect.name)
            won = (await conn.exec_driver_sql(sql, tuple(params))).all()
            entries, notes = [], []
            for rid, level in won:
                row, new_owner, step, deadline = plans[rid]
                escalated = step > 0
                payload = {f"{spec.kind}_id": rid, "customer_id": row.customer_id, "owner_id": new_owner,
                           "escalation_level": level, "sla_deadline": iso(deadline),
                           "missed_deadline": iso(row.sla_deadline), "product_line": row.product_line,
                           "at": now.timestamp()}
                if escalated:
                    payload["from_owner_id"] = row.owner_id
                if spec is QUESTIONS:
                    payload["question"] = row.question[:500]
                    payload["asked_by"] = row.asked_by
                topic = spec.escalated_topic if escalated else spec.breached_topic
                report.events.append((topic, payload))
                if spec is TICKETS:
                    entries.append(history_entry(
                        rid, SYSTEM, "escalated" if escalated else "reminded", now,
                        from_owner_id=row.owner_id, to_owner_id=new_owner,
                        detail=f"deadline {iso(row.sla_deadline)} missed; level {level}; new deadline {iso(deadline)}"))
                verb = "escalated to you" if escalated else "is overdue at the top of the chain"
                notes += outbox.rows_for(chart.get(new_owner), {"event": topic, **payload},
                                         subject=f"{spec.kind.capitalize()} #{rid} {verb}",
                                         key=f"{spec.kind}:{rid}:{'esc' if escalated else 'remind'}:{iso(row.sla_deadline)}",
                                         now=now)
                if escalated:
                    report.escalated += 1
                else:
                    report.reminded += 1
            report.lost += len(batch) - len(won)
            await add_history(conn, entries)
            await outbox.enqueue(conn, notes)
        if len(batch) < page:
            break
    if report.escalated or report.reminded or report.lost:
        log.info("escalation.pass", kind=spec.kind, escalated=report.escalated, reminded=report.reminded,
                 lost=report.lost)
    return report
