"""Ticket use cases: create, answer, resolve, close, reopen, assign, views. Transactions and events.

Each method runs one transaction; the bus event goes out after the commit; notifications for
the owner are written to the outbox inside the transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker

from cti.customers.scope import scope_of
from cti.db.tables import PRODUCT_LINES, tickets
from cti.tickets import outbox, topics
from cti.tickets.org import OrgChart, load_chart
from cti.tickets.repository import (
    SYSTEM,
    Actor,
    TicketConflict,
    TicketError,
    TicketForbidden,
    add_history,
    agent_exists,
    call_of,
    clean_category,
    clean_description,
    customer_exists,
    get_ticket,
    history,
    history_entry,
    interface_of,
    iso,
    list_tickets,
    open_counts,
    ticket_dict,
)
from cti.tickets.sla import Clock, SlaPolicy, system_clock, utc
from cti.tickets.states import AWAITING_ANSWER, next_status

log = structlog.get_logger(__name__)

SUPERVISOR_ROLES = ("supervisor", "admin")
VIEWS = ("mine", "team", "overdue", "escalated", "all")


def may_manage(actor: Actor, owner_id: int | None, chart: OrgChart) -> bool:
    """The owner, anyone above the owner in the org chart, supervisors and admins."""
    if actor.role in SUPERVISOR_ROLES:
        return True
    if actor.id is None:
        return False
    return actor.id == owner_id or (owner_id is not None and chart.manages(actor.id, owner_id))


class TicketService:
    def __init__(self, sessionmaker: async_sessionmaker, bus: Any = None, clock: Clock = system_clock,
                 policy: SlaPolicy | None = None) -> None:
        self.sm = sessionmaker
        self.bus = bus
        self.clock = clock
        self.policy = policy or SlaPolicy()

    def now(self) -> datetime:
        return utc(self.clock())

    def _publish(self, topic: str, payload: dict[str, Any]) -> None:
        if self.bus is not None:
            self.bus.publish(topic, payload)

    # -- create -----------------------------------------------------------------------------
    async def _pick_owner(self, conn: AsyncConnection, chart: OrgChart, product_line: str | None) -> int:
        candidates = [p.agent_id for p in chart.responsible_for(product_line)]
        if not candidates:
            raise TicketError(f"no responsible person for product line {product_line or '(any)'}: "
                              "give an owner, or add one to the org chart (`cti org add`)", code="no_owner")
        # the front line first (deepest in the chart), then the least loaded
        depth = {a: len(chart.chain(a)) for a in candidates}
        deepest = max(depth.values())
        front = [a for a in candidates if depth[a] == deepest]
        load = await open_counts(conn, front)
        return min(front, key=lambda a: (load.get(a, 0), a))

    async def _check_call(self, conn: AsyncConnection, actor: Actor, call_id: int, customer_id: int,
                          verified: bool) -> None:
        """A ticket links a call of its own customer; an agent links only a call they handled."""
        call = await call_of(conn, call_id)
        if call is None:
            raise TicketError(f"no call {call_id}")
        if call.customer_id is not None and call.customer_id != customer_id:
            raise TicketForbidden(f"call {call_id} is another customer's call", code="other_customer_call")
        if actor.role in SUPERVISOR_ROLES or verified:
            return
        iface = await interface_of(conn, actor.id) if actor.id is not None else None
        if actor.id is None or not (call.agent_id == actor.id or (iface and call.agent_interface == iface)):
            raise TicketForbidden(f"call {call_id} is not a call you handled", code="not_your_call")

    @staticmethod
    def _check_owner(actor: Actor, owner_id: int, chart: OrgChart) -> None:
        """Agents hand a ticket only to an active front-line person of the org chart (what the console
        offers); supervisors to anyone."""
        if actor.role in SUPERVISOR_ROLES or owner_id == actor.id:
            return
        person = chart.get(owner_id)
        if person is None or not person.active or person.engineer:
            raise TicketForbidden(f"owner: agent {owner_id} does not take tickets (ask a supervisor)", code="owner_not_frontline")

    async def create(self, actor: Actor, *, customer_id: int, description: str, category: str = "complaint",
                     product_line: str | None = None, call_id: int | None = None,
                     owner_id: int | None = None, call_verified: bool = False) -> dict[str, Any]:
        """Record a ticket for ``customer_id`` and send it to its responsible person.

        ``call_verified``: the caller has checked that ``call_id`` is the actor's (the console's
        from-call: the call was popped to them); otherwise an agent may link only a call they handled.
        """
        category = clean_category(category)
        description = clean_description(description)
        if not description:
            raise TicketError("description: required", code="description_required")
        if product_line is not None and product_line not in PRODUCT_LINES:
            raise TicketError(f"product_line: {product_line!r} (expected {', '.join(PRODUCT_LINES)})")
        now = self.now()
        deadline = self.policy.deadline(category, now)
        async with self.sm() as session, session.begin():
            conn = await session.connection()
            await (await scope_of(conn, actor)).check(conn, customer_id)
            if not await customer_exists(conn, customer_id):
                raise TicketError(f"no customer {customer_id}")
            if call_id is not None:
                await self._check_call(conn, actor, call_id, customer_id, call_verified)
            chart = await load_chart(conn)
            if owner_id is None:
                owner_id = await self._pick_owner(conn, chart, product_line)
            elif not await agent_exists(conn, owner_id):
                raise TicketError(f"owner: no agent {owner_id}")
            else:
                self._check_owner(actor, owner_id, chart)
            ticket_id = (await conn.execute(tickets.insert().values(
                customer_id=customer_id, call_id=call_id, category=category, product_line=product_line,
                description=description, status="open", owner_id=owner_id, sla_deadline=deadline,
                created_at=now, updated_at=now, created_by=actor.id, escalation_level=0,
            ).returning(tickets.c.id))).scalar_one()
            await add_history(conn, [history_entry(ticket_id, actor, "created", now, to_status="open",
                                                   to_owner_id=owner_id, detail=description)])
            row = await get_ticket(conn, ticket_id)
            event = {"event": topics.TICKET_CREATED, "ticket_id": ticket_id, "customer_id": customer_id,
                     "call_id": call_id, "category": category, "product_line": product_line, "status": "open",
                     "owner_id": owner_id, "created_by": actor.id, "sla_deadline": iso(deadline),
                     "description": description[:500], "at": now.timestamp()}
            await outbox.enqueue(conn, outbox.rows_for(
                chart.get(owner_id), event, subject=f"New {category} ticket #{ticket_id} for you",
                key=f"ticket:{ticket_id}:created", now=now))
        log.info("ticket.created", ticket_id=ticket_id, customer_id=customer_id, owner_id=owner_id, category=category)
        self._publish(topics.TICKET_CREATED, {k: v for k, v in event.items() if k != "event"})
        return ticket_dict(row, now)

    # -- transitions ------------------------------------------------------------------------
    async def act(self, actor: Actor, ticket_id: int, action: str, detail: str = "") -> dict[str, Any]:
        """Apply ``action`` (answer, resolve, close, reopen); IllegalTransition/TicketForbidden explain refusals."""
        detail = clean_description(detail)
        if action == "answer" and not detail:
            raise TicketError("answer: the answer text is required", code="text_required")
        now = self.now()
        async with self.sm() as session, session.begin():
            conn = await session.connection()
            row = await get_ticket(conn, ticket_id)
            await (await scope_of(conn, actor)).check(conn, row.customer_id)
            new_status = next_status(row.status, action)
            chart = await load_chart(conn)
            if action != "reopen" and not may_manage(actor, row.owner_id, chart):
                raise TicketForbidden(f"only the owner, their managers or a supervisor may {action} ticket {ticket_id}")
            values: dict[str, Any] = {"status": new_status, "updated_at": now}
            if action == "reopen":
                values["sla_deadline"] = self.policy.deadline(row.category, now)
            res = await conn.execute(update(tickets).where(tickets.c.id == ticket_id, tickets.c.status == row.status)
                                     .values(**values))
            if res.rowcount != 1:
                raise TicketConflict(f"ticket {ticket_id} changed meanwhile; reload it")
            await add_history(conn, [history_entry(ticket_id, actor, _PAST[action], now, from_status=row.status,
                                                   to_status=new_status, detail=detail)])
            updated = await get_ticket(conn, ticket_id)
            event = {"event": topics.TICKET_UPDATED, "ticket_id": ticket_id, "action": action, "status": new_status,
                     "owner_id": row.owner_id, "previous_owner_id": row.owner_id, "actor_id": actor.id,
                     "customer_id": row.customer_id, "sla_deadline": iso(updated.sla_deadline), "at": now.timestamp()}
            if action == "reopen":
                await outbox.enqueue(conn, outbox.rows_for(
                    chart.get(row.owner_id), event, subject=f"Ticket #{ticket_id} was reopened",
                    key=f"ticket:{ticket_id}:reopened:{now.isoformat()}", now=now))
        log.info("ticket.updated", ticket_id=ticket_id, action=action, status=new_status, actor=actor.name)
        self._publish(topics.TICKET_UPDATED, {k: v for k, v in event.items() if k != "event"})
        return ticket_dict(updated, now)

    async def answer(self, actor: Actor, ticket_id: int, text: str) -> dict[str, Any]:
        return await self.act(actor, ticket_id, "answer", text)

    async def resolve(self, actor: Actor, ticket_id: int, note: str = "") -> dict[str, Any]:
        return await self.act(actor, ticket_id, "resolve", note)

    async def close(self, actor: Actor, ticket_id: int, note: str = "") -> dict[str, Any]:
        return await self.act(actor, ticket_id, "close", note)

    async def reopen(self, actor: Actor, ticket_id: int, reason: str = "") -> dict[str, Any]:
        return await self.act(actor, ticket_id, "reopen", reason)

    async def assign(self, actor: Actor, ticket_id: int, owner_id: int, note: str = "") -> dict[str, Any]:
        """Hand the ticket to another person (the deadline is kept)."""
        note = clean_description(note)
        now = self.now()
        async with self.sm() as session, session.begin():
            conn = await session.connection()
            row = await get_ticket(conn, ticket_id)
            await (await scope_of(conn, actor)).check(conn, row.customer_id)
            chart = await load_chart(conn)
            if not may_manage(actor, row.owner_id, chart):
                raise TicketForbidden(f"only the owner, their managers or a supervisor may assign ticket {ticket_id}")
            if not await agent_exists(conn, owner_id):
                raise TicketError(f"owner: no agent {owner_id}")
            if row.status in ("resolved", "closed"):
                raise TicketError(f"ticket {ticket_id} is {row.status}: reopen it first")
            res = await conn.execute(update(tickets).where(tickets.c.id == ticket_id, tickets.c.status == row.status,
                                                           tickets.c.owner_id.is_not_distinct_from(row.owner_id))
                                     .values(owner_id=owner_id, updated_at=now))
            if res.rowcount != 1:
                raise TicketConflict(f"ticket {ticket_id} changed meanwhile; reload it")
            await add_history(conn, [history_entry(ticket_id, actor, "assigned", now, from_owner_id=row.owner_id,
                                                   to_owner_id=owner_id, detail=note)])
            updated = await get_ticket(conn, ticket_id)
            event = {"event": topics.TICKET_UPDATED, "ticket_id": ticket_id, "action": "assign", "status": row.status,
                     "owner_id": owner_id, "previous_owner_id": row.owner_id, "actor_id": actor.id,
                     "customer_id": row.customer_id, "sla_deadline": iso(row.sla_deadline), "at": now.timestamp()}
            await outbox.enqueue(conn, outbox.rows_for(
                chart.get(owner_id), event, subject=f"Ticket #{ticket_id} was assigned to you",
                key=f"ticket:{ticket_id}:assigned:{owner_id}:{now.isoformat()}", now=now))
        self._publish(topics.TICKET_UPDATED, {k: v for k, v in event.items() if k != "event"})
        return ticket_dict(updated, now)

    # -- reads ------------------------------------------------------------------------------
    async def get(self, ticket_id: int, actor: Actor | None = None) -> dict[str, Any]:
        """The ticket with its history, oldest entry first (``actor``: whose customer scope applies)."""
        now = self.now()
        async with self.sm() as session:
            conn = await session.connection()
            row = await get_ticket(conn, ticket_id)
            await (await scope_of(conn, actor)).check(conn, row.customer_id)
            out = ticket_dict(row, now)
            out["history"] = await history(conn, ticket_id)
        return out

    async def view(self, actor: Actor, view: str = "mine", *, customer_id: int | None = None,
                   statuses: list[str] | None = None, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """mine, team (people below me), overdue, escalated, all. Agents see overdue/escalated of self + team."""
        if view not in VIEWS:
            raise TicketError(f"view: {view!r} (expected {', '.join(VIEWS)})")
        now = self.now()
        async with self.sm() as session:
            conn = await session.connection()
            scope = await scope_of(conn, actor)
            chart = await load_chart(conn)
            owners: set[int] | None = None
            mine = {actor.id} if actor.id is not None else set()
            if view == "mine":
                owners = mine
            elif view == "team":
                owners = chart.team_of(actor.id) if actor.id is not None else set()
            elif actor.role not in SUPERVISOR_ROLES and customer_id is None:
                owners = mine | (chart.team_of(actor.id) if actor.id is not None else set())
            rows = await list_tickets(
                conn, owner_ids=owners, statuses=statuses,
                overdue_at=now if view == "overdue" else None,
                escalated=True if view == "escalated" else None,
                customer_id=customer_id, scope=scope, limit=limit, offset=offset)
        if view == "escalated":
            rows = [r for r in rows if r.status not in ("resolved", "closed")]
        return [ticket_dict(r, now) for r in rows]


_PAST = {"answer": "answered", "resolve": "resolved", "close": "closed", "reopen": "reopened"}

__all__ = ["SYSTEM", "Actor", "TicketService", "may_manage", "VIEWS", "AWAITING_ANSWER"]
