"""Ticket rows and their history (SQLAlchemy Core on one connection; the caller owns the transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cti.db.tables import agents, calls, customers, ticket_history, tickets
from cti.tickets.states import AWAITING_ANSWER, allowed_actions


class TicketError(ValueError):
    """A ticket request that cannot be done; the message says why (safe to show the agent), ``code`` (optional)
    is the stable key the console translates."""

    def __init__(self, message: str = "", code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class TicketNotFound(TicketError):
    pass


class TicketForbidden(TicketError):
    pass


class TicketConflict(TicketError):
    """The ticket changed between reading and writing (another agent, or the scheduler)."""


@dataclass(frozen=True)
class Actor:
    """Who does something: an agent account (``id``) or the system (``id`` None)."""

    id: int | None
    name: str
    role: str = "agent"


SYSTEM = Actor(None, "system", "admin")

MAX_DESCRIPTION = 10_000
MAX_CATEGORY = 64


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def ticket_dict(row: Any, now: datetime | None = None) -> dict[str, Any]:
    """The JSON shape of a ticket (REST, CLI --json)."""
    d = {
        "id": row.id, "customer_id": row.customer_id, "call_id": row.call_id, "category": row.category,
        "product_line": row.product_line, "description": row.description, "status": row.status,
        "owner_id": row.owner_id, "created_by": row.created_by, "escalation_level": row.escalation_level,
        "sla_deadline": iso(row.sla_deadline), "escalated_at": iso(row.escalated_at),
        "created_at": iso(row.created_at), "updated_at": iso(row.updated_at),
        "actions": allowed_actions(row.status),
    }
    if now is not None:
        d["overdue"] = bool(row.status in AWAITING_ANSWER and row.sla_deadline is not None and row.sla_deadline <= now)
    return d


def history_dict(row: Any) -> dict[str, Any]:
    return {"id": row.id, "ticket_id": row.ticket_id, "at": iso(row.at), "actor_id": row.actor_id, "actor": row.actor,
            "action": row.action, "from_status": row.from_status, "to_status": row.to_status,
            "from_owner_id": row.from_owner_id, "to_owner_id": row.to_owner_id, "detail": row.detail}


def clean_category(category: str) -> str:
    category = " ".join((category or "").split()).lower()
    if not category or len(category) > MAX_CATEGORY:
        raise TicketError(f"category: 1-{MAX_CATEGORY} characters")
    return category


def clean_description(description: str) -> str:
    description = (description or "").replace("\x00", "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise TicketError(f"description: at most {MAX_DESCRIPTION} characters")
    return description


async def get_ticket(conn: AsyncConnection, ticket_id: int) -> Any:
    row = (await conn.execute(select(tickets).where(tickets.c.id == ticket_id))).first()
    if row is None:
        raise TicketNotFound(f"no ticket {ticket_id}")
    return row


async def customer_exists(conn: AsyncConnection, customer_id: int) -> bool:
    return (await conn.execute(select(customers.c.id).where(customers.c.id == customer_id))).first() is not None


async def call_exists(conn: AsyncConnection, call_id: int) -> bool:
    return (await conn.execute(select(calls.c.id).where(calls.c.id == call_id))).first() is not None


async def call_of(conn: AsyncConnection, call_id: int) -> Any:
    """The call's ``customer_id`` and who handled it (``agent_id``, ``agent_interface``); None: no such call."""
    return (await conn.execute(select(calls.c.customer_id, calls.c.agent_id, calls.c.agent_interface)
                               .where(calls.c.id == call_id))).first()


async def interface_of(conn: AsyncConnection, agent_id: int) -> str | None:
    return (await conn.execute(select(agents.c.interface).where(agents.c.id == agent_id))).scalar()


async def ticket_exists(conn: AsyncConnection, ticket_id: int) -> bool:
    return (await conn.execute(select(tickets.c.id).where(tickets.c.id == ticket_id))).first() is not None


async def agent_exists(conn: AsyncConnection, agent_id: int) -> bool:
    return (await conn.execute(select(agents.c.id).where(agents.c.id == agent_id))).first() is not None


async def open_counts(conn: AsyncConnection, owner_ids: Sequence[int]) -> dict[int, int]:
    """Tickets waiting for an answer, per owner (to spread new tickets)."""
    if not owner_ids:
        return {}
    rows = await conn.execute(
        select(tickets.c.owner_id, func.count()).where(tickets.c.owner_id.in_(list(owner_ids)),
                                                       tickets.c.status.in_(AWAITING_ANSWER))
        .group_by(tickets.c.owner_id))
    return {int(o): int(n) for o, n in rows.all()}


async def add_history(conn: AsyncConnection, entries: Iterable[dict[str, Any]]) -> None:
    entries = list(entries)
    if entries:
        await conn.execute(ticket_history.insert(), entries)


def history_entry(ticket_id: int, actor: Actor, action: str, now: datetime, *, from_status: str | None = None,
                  to_status: str | None = None, from_owner_id: int | None = None, to_owner_id: int | None = None,
                  detail: str = "") -> dict[str, Any]:
    return {"ticket_id": ticket_id, "at": now, "actor_id": actor.id, "actor": actor.name, "action": action,
            "from_status": from_status, "to_status": to_status, "from_owner_id": from_owner_id,
            "to_owner_id": to_owner_id, "detail": detail}


async def history(conn: AsyncConnection, ticket_id: int) -> list[dict[str, Any]]:
    rows = await conn.execute(select(ticket_history).where(ticket_history.c.ticket_id == ticket_id)
                              .order_by(ticket_history.c.id))
    return [history_dict(r) for r in rows]


async def list_tickets(conn: AsyncConnection, *, owner_ids: Iterable[int] | None = None,
                       statuses: Iterable[str] | None = None, overdue_at: datetime | None = None,
                       escalated: bool | None = None, customer_id: int | None = None,
                       scope: Any = None, limit: int = 100, offset: int = 0) -> list[Any]:
    """Tickets matching every given filter, most urgent (earliest deadline) first; ``scope``
    (:class:`cti.customers.scope.Scope`) keeps a dealer contact to its dealer's customers."""
    q = select(tickets)
    if scope is not None:
        q = q.where(scope.where(tickets.c.customer_id))
    if owner_ids is not None:
        q = q.where(tickets.c.owner_id.in_(list(owner_ids)))
    if statuses is not None:
        q = q.where(tickets.c.status.in_(list(statuses)))
    if overdue_at is not None:
        q = q.where(tickets.c.status.in_(AWAITING_ANSWER), tickets.c.sla_deadline <= overdue_at)
    if escalated is True:
        q = q.where(tickets.c.escalation_level > 0)
    elif escalated is False:
        q = q.where(tickets.c.escalation_level == 0)
    if customer_id is not None:
        q = q.where(tickets.c.customer_id == customer_id)
    q = q.order_by(tickets.c.sla_deadline.is_(None), tickets.c.sla_deadline, tickets.c.id)
    return list((await conn.execute(q.limit(max(1, min(limit, 1000))).offset(max(0, offset)))).all())


def open_complaint_filter(customer_id: int) -> Any:
    """The routing meaning of an open complaint (FastAGI): category 'complaint' in open/answered/reopened."""
    return and_(tickets.c.customer_id == customer_id, tickets.c.category == "complaint",
                or_(*(tickets.c.status == s for s in ("open", "answered", "reopened"))))
