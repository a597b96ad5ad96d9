"""A small org for tests and demos: a complaint chain and a back-office engineer chain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from cti.db.tables import agents, customers
from cti.tickets.org import set_person


@dataclass(frozen=True)
class DemoOrg:
    agent: int       # front line, appliances (reports to lead)
    lead: int        # team lead (reports to head)
    head: int        # department head (reports to director)
    director: int    # top of the chain
    engineer: int    # back-office engineer, appliances (reports to eng_lead)
    eng_lead: int    # top of the engineers
    supervisor: int  # role supervisor, outside the chain
    customer: int


async def build_demo_org(conn: AsyncConnection, now: datetime, *, email_domain: str | None = "example.com",
                         webhook_url: str | None = None) -> DemoOrg:
    """Insert the accounts, the org chart and one customer; e-mail addresses at ``email_domain``."""
    ids = {}
    for name, role in [("agent", "agent"), ("lead", "agent"), ("head", "agent"), ("director", "agent"),
                       ("engineer", "agent"), ("eng_lead", "agent"), ("supervisor", "supervisor")]:
        ids[name] = (await conn.execute(agents.insert().values(
            username=f"{name}", display_name=name.title(), role=role, created_at=now).returning(agents.c.id))).scalar_one()

    def mail(name: str) -> str | None:
        return f"{name}@{email_domain}" if email_domain else None

    await set_person(conn, ids["director"], now=now, department="customer care", email=mail("director"),
                     webhook_url=webhook_url)
    await set_person(conn, ids["head"], now=now, manager_id=ids["director"], department="customer care",
                     product_line="appliances", email=mail("head"), webhook_url=webhook_url)
    await set_person(conn, ids["lead"], now=now, manager_id=ids["head"], department="customer care",
                     product_line="appliances", email=mail("lead"), webhook_url=webhook_url)
    await set_person(conn, ids["agent"], now=now, manager_id=ids["lead"], department="customer care",
                     product_line="appliances", email=mail("agent"), webhook_url=webhook_url)
    await set_person(conn, ids["eng_lead"], now=now, department="back office", engineer=True,
                     email=mail("eng_lead"), webhook_url=webhook_url)
    await set_person(conn, ids["engineer"], now=now, manager_id=ids["eng_lead"], department="back office",
                     product_line="appliances", engineer=True, email=mail("engineer"), webhook_url=webhook_url)
    customer = (await conn.execute(customers.insert().values(
        family_name="王", given_name="芳", title="女士", created_at=now, updated_at=now).returning(customers.c.id))).scalar_one()
    return DemoOrg(customer=customer, **ids)
