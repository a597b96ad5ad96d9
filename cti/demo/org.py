"""The demo's org chart: product-line owners, their managers and a customer-care director.

A complaint created from a pop goes to the owner of its product line (the front line of the chart);
missed deadlines climb to the owner's manager, then to the director (cti/tickets/escalation.py).
The accounts are console logins (password ``demo-agent``) without a phone: they answer tickets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cti.agents.accounts import add_agent
from cti.db.tables import agents, org_people
from cti.tickets.org import set_person

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class OrgMember:
    username: str
    display_name: str
    role: str
    manager: str | None  # username
    product_line: str | None
    department: str = "customer care"


#: Top first (a manager is created before the people who report to them).
ORG: tuple[OrgMember, ...] = (
    OrgMember("director", "刘建国 (客服总监 Director)", "supervisor", None, None),
    OrgMember("consumer-manager", "陈静 (家电与办公经理 Manager)", "agent", "director", None),
    OrgMember("mobile-manager", "王强 (手机经理 Manager)", "agent", "director", None),
    OrgMember("appliances-owner", "赵敏 (家电负责人 Owner)", "agent", "consumer-manager", "appliances"),
    OrgMember("office-owner", "孙涛 (办公设备负责人 Owner)", "agent", "consumer-manager", "office"),
    OrgMember("mobile-owner", "周丽 (手机负责人 Owner)", "agent", "mobile-manager", "mobile"),
)


async def seed_org(conn: AsyncConnection, password_hash: str, now: datetime) -> int:
    """Create the :data:`ORG` accounts and their places in an empty org chart; returns how many (0: a chart exists)."""
    if (await conn.execute(select(func.count()).select_from(org_people))).scalar_one():
        return 0
    ids: dict[str, int] = {}
    for m in ORG:
        found = (await conn.execute(select(agents.c.id).where(agents.c.username == m.username))).scalar()
        ids[m.username] = int(found) if found is not None else await add_agent(
            conn, m.username, password_hash, display_name=m.display_name, role=m.role, language="zh")
        await set_person(conn, ids[m.username], now=now, manager_id=ids[m.manager] if m.manager else None,
                         department=m.department, product_line=m.product_line)
    log.info("demo.org_seeded", people=len(ORG))
    return len(ORG)
