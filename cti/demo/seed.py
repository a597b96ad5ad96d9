"""Write the demo's world into a cti database: customers, open complaints, console accounts, the org
chart (cti/demo/org.py) and the knowledge base (cti/demo/kb.py).

Accounts go through :func:`cti.agents.accounts.add_agent`, customers through
:func:`cti.customers.repository.add_customer`, complaints through :class:`cti.tickets.service.TicketService`:
the demo data is exactly what an admin's ``cti agents add`` / ``cti customers import`` / ``cti tickets
create`` would have made. Each distinct password is hashed once (argon2 is slow on purpose).

Everything is dated on the demo's simulated clock (``now``: where its day starts). One complaint is
``ESCALATES_AFTER_S`` simulated seconds from its deadline, so a run shows one escalation happening.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cti.agents.accounts import add_agent
from cti.agents.passwords import hash_password
from cti.customers.records import customer_from_fields
from cti.customers.repository import add_customer
from cti.db.engine import sessionmaker
from cti.db.tables import agents, customers
from cti.demo.data import ADMIN_PASSWORD, AGENT_PASSWORD, SUPERVISOR_PASSWORD, DemoCustomer, Roster
from cti.demo.kb import seed_kb
from cti.demo.org import seed_org
from cti.tickets.repository import SYSTEM
from cti.tickets.service import TicketService
from cti.tickets.sla import SlaPolicy

#: The first seeded complaint misses its deadline this many simulated seconds after the day starts.
ESCALATES_AFTER_S = 600.0


@dataclass(frozen=True)
class Seeded:
    customers: int
    complaints: int
    accounts: int
    created: bool  # False: the database already held a demo world (only a missing org chart / KB added)
    org: int = 0  # org chart people added
    articles: int = 0  # knowledge-base articles added


async def has_demo_world(engine: AsyncEngine, roster: Roster) -> bool:
    async with engine.connect() as conn:
        n = (await conn.execute(select(func.count()).select_from(agents)
                                .where(agents.c.username == roster.admin))).scalar_one()
    return bool(n)


async def _org_and_kb(engine: AsyncEngine, agent_hash: str | None, agent_password: str,
                      now: datetime) -> tuple[int, int]:
    async with engine.begin() as conn:
        org = await seed_org(conn, agent_hash or hash_password(agent_password), now)
        return org, await seed_kb(conn, now)


async def seed_world(engine: AsyncEngine, people: list[DemoCustomer], roster: Roster, *,
                     region: str = "CN", agent_password: str = AGENT_PASSWORD, now: datetime | None = None,
                     policy: SlaPolicy | None = None) -> Seeded:
    """Insert the demo customers, the accounts, the org chart, the KB and the open complaints, dated
    ``now`` (skip if already there; an older demo database gets its missing org chart and KB)."""
    now = now or datetime.now(timezone.utc)
    if await has_demo_world(engine, roster):
        org, articles = await _org_and_kb(engine, None, agent_password, now)
        async with engine.connect() as conn:
            n = (await conn.execute(select(func.count()).select_from(customers))).scalar_one()
        return Seeded(int(n), 0, org, False, org, articles)
    agent_hash = hash_password(agent_password)
    ids: list[tuple[int, DemoCustomer]] = []
    async with engine.begin() as conn:
        for a in roster.agents:
            await add_agent(conn, a.username, agent_hash, display_name=a.display_name, role="agent",
                            interface=a.interface, language=a.language, skills={a.queue: 0},
                            experienced=a.queue == "complaints")
        await add_agent(conn, roster.supervisor, hash_password(SUPERVISOR_PASSWORD),
                                        display_name="值班主管 Supervisor", role="supervisor", language="zh")
        await add_agent(conn, roster.admin, hash_password(ADMIN_PASSWORD), display_name="Admin", role="admin",
                        language="en")
        for person in people:
            ids.append((await add_customer(conn, customer_from_fields(person.fields, region)), person))
    org, articles = await _org_and_kb(engine, agent_hash, agent_password, now)
    policy = policy or SlaPolicy()
    complaints = 0
    for customer_id, person in ids:
        if person.complaint:
            at = now
            if complaints == 0:  # misses its deadline ESCALATES_AFTER_S into the day
                at = now - timedelta(hours=policy.hours_for("complaint")) + timedelta(seconds=ESCALATES_AFTER_S)
            tickets = TicketService(sessionmaker(engine), clock=lambda at=at: at, policy=policy)
            await tickets.create(SYSTEM, customer_id=customer_id, description=person.complaint,
                                 product_line=person.complaint_line)
            complaints += 1
    return Seeded(len(ids), complaints, len(roster.agents) + 2 + org, True, org, articles)
