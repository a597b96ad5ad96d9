"""The org chart and knowledge base the console's ticket/KB tests share, on top of test_web_support's world.

alice (agent, PJSIP/1001, appliances) reports to lena (team lead, role agent, no phone), who reports
to sue (supervisor). ed is the appliances back-office engineer. Two KB articles, one Chinese, one English.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from cti.agents.accounts import add_agent
from cti.kb.articles import add_article
from cti.tickets.org import set_person
from cti.tickets.scheduler import TicketScheduler
from test_web_support import _HASH, Web


async def seed_org(web: Web) -> dict[str, int]:
    now = datetime.now(timezone.utc)
    ids = dict(web.ids)
    async with web.daemon.engine.begin() as conn:
        ids["lena"] = await add_agent(conn, "lena", _HASH, display_name="Lena 李", role="agent", language="zh")
        ids["ed"] = await add_agent(conn, "ed", _HASH, display_name="Ed 工程师", role="agent", language="en")
        await set_person(conn, ids["sue"], now=now, department="customer care")
        await set_person(conn, ids["lena"], now=now, manager_id=ids["sue"], department="customer care",
                         product_line="appliances")
        await set_person(conn, ids["alice"], now=now, manager_id=ids["lena"], department="customer care",
                         product_line="appliances")
        await set_person(conn, ids["ed"], now=now, department="back office", product_line="appliances", engineer=True)
        ids["article_zh"] = await add_article(
            conn, title="微波炉不加热怎么办", body="请先检查门是否关好，再检查电源和保险丝。仍不加热请预约上门检修。",
            now=now, product_line="appliances", tags=["微波炉", "ivr:1"])
        ids["article_en"] = await add_article(
            conn, title="Phone battery drains quickly", body="Turn off background refresh and check battery health.",
            now=now, product_line="mobile", tags=["battery"])
    return ids


def scheduler_at(web: Web, offset_s: float) -> TicketScheduler:
    """A scheduler over the daemon's database and bus whose clock is ``offset_s`` ahead of now."""
    return TicketScheduler(web.daemon.sessionmaker, web.daemon.bus, lambda: time.time() + offset_s, None,
                           policy=web.daemon.settings.tickets.policy())
