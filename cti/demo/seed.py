"""Write the demo's world into a cti database: customers, open complaints, console accounts.

Accounts go through :func:`cti.agents.accounts.add_agent`, customers through
:func:`cti.customers.repository.add_customer`, complaints through :class:`cti.tickets.service.TicketService`:
the demo data is exactly what an admin's ``cti agents add`` / ``cti customers import`` / ``cti tickets
create`` would have made. Each distinct password is hashed once (argon2 is slow on purpose).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cti.agents.accounts import add_agent
from cti.agents.passwords import hash_password
from cti.customers.records import customer_from_fields
from cti.customers.repository import add_customer
from cti.db.engine import sessionmaker
from cti.db.tables import agents, customers
from cti.demo.data import ADMIN_PASSWORD, AGENT_PASSWORD, SUPERVISOR_PASSWORD, DemoCustomer, Roster
from cti.tickets.repository import SYSTEM
from cti.tickets.service import TicketService


@dataclass(frozen=True)
class Seeded:
    customers: int
    complaints: int
    accounts: int
    created: bool  # False: the database already held a demo world (nothing written)


async def has_demo_world(engine: AsyncEngine, roster: Roster) -> bool:
    async with engine.connect() as conn:
        n = (await conn.execute(select(func.count()).select_from(agents)
                                .where(agents.c.username == roster.admin))).scalar_one()
    return bool(n)


async def seed_world(engine: AsyncEngine, people: list[DemoCustomer], roster: Roster, *,
                     region: str = "CN", agent_password: str = AGENT_PASSWORD) -> Seeded:
    """Insert the demo customers, their open complaints and the accounts (skip if already there)."""
    if await has_demo_world(engine, roster):
        async with engine.connect() as conn:
            n = (await conn.execute(select(func.count()).select_from(customers))).scalar_one()
        return Seeded(int(n), 0, 0, False)
    agent_hash = hash_password(agent_password)
    ids: list[tuple[int, DemoCustomer]] = []
    async with engine.begin() as conn:
        for a in roster.agents:
            await add_agent(conn, a.username, agent_hash, display_name=a.display_name, role="agent",
                            interface=a.interface, language=a.language, skills={a.queue: 0},
                            experienced=a.queue == "complaints")
        supervisor_id = await add_agent(conn, roster.supervisor, hash_password(SUPERVISOR_PASSWORD),
                                        display_name="值班主管 Supervisor", role="supervisor", language="zh")
        await add_agent(conn, roster.admin, hash_password(ADMIN_PASSWORD), display_name="Admin", role="admin",
                        language="en")
        for person in people:
            ids.append((await add_customer(conn, customer_from_fields(person.fields, region)), person))
    tickets = TicketService(sessionmaker(engine))
    complaints = 0
    for customer_id, person in ids:
        if person.complaint:
            await tickets.create(SYSTEM, customer_id=customer_id, description=person.complaint,
                                 product_line=person.complaint_line, owner_id=supervisor_id)
            complaints += 1
    return Seeded(len(ids), complaints, len(roster.agents) + 2, True)
