"""A complaint answered, resolved or reopened changes the caller's pop: its cached card is dropped."""

from __future__ import annotations

import asyncio
import time

from test_web_popcache import decide, prefetched
from test_web_support import Web, web  # noqa: F401  (fixture)


async def test_a_resolved_complaint_drops_the_customers_cached_pop(web: Web):
    decide(web, "tu.1", web.customer_id)
    await prefetched(web, "tu.1")
    web.daemon.bus.publish("ticket.updated", {"ticket_id": 7, "action": "resolve", "status": "resolved",
                                              "customer_id": web.customer_id, "at": time.time()})
    cache = web.daemon.web.hub.cache
    for _ in range(500):
        if cache.peek(("default", "tu.1")) is None:
            break
        await asyncio.sleep(0.01)
    assert cache.peek(("default", "tu.1")) is None
