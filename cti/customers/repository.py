"""Customer records through SQLAlchemy Core: add, update, show, find by phone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cti.customers.records import CustomerInput, InvalidRecord
from cti.db.tables import OPEN_TICKET_STATES, agents, calls, customer_phones, customers, products, tickets


class DuplicatePhone(InvalidRecord):
    """A phone number already belongs to another customer."""


@dataclass(frozen=True)
class NameChange:
    """What the greeting service needs after a write: whose spoken name is new."""

    customer_id: int
    family_name: str
    given_name: str
    title: str
    language: str


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _fields(record: CustomerInput) -> dict[str, Any]:
    """The customers columns a CustomerInput sets."""
    return dict(
        family_name=record.family_name,
        given_name=record.given_name,
        title=record.title,
        language=record.language,
        vip=record.vip,
        dealer=record.dealer,
        email=record.email,
    )


async def _check_phone_owners(conn: AsyncConnection, record: CustomerInput, customer_id: int | None) -> set[str]:
    """Raise DuplicatePhone if a number belongs to another customer; return the numbers already theirs."""
    owners = (
        await conn.execute(
            select(customer_phones.c.e164, customer_phones.c.customer_id).where(
                customer_phones.c.e164.in_([p.e164 for p in record.phones])
            )
        )
    ).all()
    for e164, owner in owners:
        if owner != customer_id:
            raise DuplicatePhone(f"phones: {e164} already belongs to customer {owner}")
    return {e164 for e164, _ in owners}


async def add_customer(conn: AsyncConnection, record: CustomerInput) -> int:
    """Insert a customer with phones and products; raise DuplicatePhone if a number is taken."""
    await _check_phone_owners(conn, record, None)
    now = _now()
    result = await conn.execute(insert(customers).values(**_fields(record), created_at=now, updated_at=now))
    customer_id = int(result.inserted_primary_key[0])
    await _write_children(conn, customer_id, record, replace_products=False)
    return customer_id


async def update_customer(conn: AsyncConnection, customer_id: int, record: CustomerInput) -> NameChange | None:
    """Replace a customer's fields, add new phones, replace products when given.

    Returns a NameChange when the spoken greeting must be redone (the stored one is cleared).
    """
    row = (await conn.execute(select(customers).where(customers.c.id == customer_id))).first()
    if row is None:
        raise InvalidRecord(f"no customer {customer_id}")
    known = await _check_phone_owners(conn, record, customer_id)
    spoken = (record.family_name, record.given_name, record.title, record.language)
    spoken_changed = (row.family_name, row.given_name, row.title, row.language) != spoken
    values: dict[str, Any] = {**_fields(record), "updated_at": _now()}
    if spoken_changed:
        values["greeting"] = None
    await conn.execute(update(customers).where(customers.c.id == customer_id).values(**values))
    await _write_children(
        conn,
        customer_id,
        CustomerInput(phones=tuple(p for p in record.phones if p.e164 not in known), products=record.products),
        replace_products=bool(record.products),
    )
    if spoken_changed:
        return NameChange(customer_id, *spoken)
    return None


async def _write_children(conn: AsyncConnection, customer_id: int, record: CustomerInput, replace_products: bool) -> None:
    if record.phones:
        await conn.execute(
            insert(customer_phones),
            [{"customer_id": customer_id, "e164": p.e164, "kind": p.kind, "raw": p.raw} for p in record.phones],
        )
    if replace_products:
        await conn.execute(delete(products).where(products.c.customer_id == customer_id))
    if record.products:
        await conn.execute(
            insert(products),
            [
                {
                    "customer_id": customer_id,
                    "product_line": p.product_line,
                    "model": p.model,
                    "purchased_on": p.purchased_on,
                    "serial": p.serial,
                }
                for p in record.products
            ],
        )


async def find_customer_id(conn: AsyncConnection, e164: str) -> int | None:
    return (
        await conn.execute(select(customer_phones.c.customer_id).where(customer_phones.c.e164 == e164))
    ).scalar_one_or_none()


async def get_customer(conn: AsyncConnection, customer_id: int, recent_calls: int = 5) -> dict[str, Any] | None:
    """A customer with phones, products, open complaints and the last calls (for CLI and pops)."""
    row = (await conn.execute(select(customers).where(customers.c.id == customer_id))).mappings().first()
    if row is None:
        return None
    phones = (
        await conn.execute(
            select(customer_phones.c.e164, customer_phones.c.kind)
            .where(customer_phones.c.customer_id == customer_id)
            .order_by(customer_phones.c.id)
        )
    ).mappings().all()
    owned = (
        await conn.execute(
            select(products.c.product_line, products.c.model, products.c.serial, products.c.purchased_on)
            .where(products.c.customer_id == customer_id)
            .order_by(products.c.purchased_on.desc(), products.c.id)
        )
    ).mappings().all()
    complaints = (
        await conn.execute(
            select(tickets.c.id, tickets.c.category, tickets.c.description, tickets.c.status, tickets.c.sla_deadline)
            .where(and_(tickets.c.customer_id == customer_id, tickets.c.status.in_(OPEN_TICKET_STATES)))
            .order_by(tickets.c.sla_deadline)
        )
    ).mappings().all()
    last_calls = (
        await conn.execute(
            select(
                calls.c.started_at, calls.c.queue, calls.c.outcome, calls.c.disposition, calls.c.notes, calls.c.agent_id,
                calls.c.agent_interface, agents.c.display_name.label("agent_name"),
            )
            .select_from(calls.outerjoin(agents, agents.c.id == calls.c.agent_id))
            .where(calls.c.customer_id == customer_id)
            .order_by(calls.c.started_at.desc())
            .limit(recent_calls)
        )
    ).mappings().all()
    return {
        **dict(row),
        "phones": [dict(p) for p in phones],
        "products": [dict(p) for p in owned],
        "open_tickets": [dict(t) for t in complaints],
        "last_calls": [dict(c) for c in last_calls],
    }
