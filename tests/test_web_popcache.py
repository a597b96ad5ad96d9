"""Pop prefetch cache: the decision prefetches the customer part, the ring then needs no database query;
edits, wrap-ups and new complaints invalidate it; unknown callers still pop; the cache is bounded."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from contextlib import contextmanager
from typing import Any, Iterator

from sqlalchemy import event, insert

from cti.calls.recorder import CallRecorder
from cti.customers.repository import get_customer
from cti.db.tables import customers
from cti.web.popcache import PopCache, fetch_pop_customer, fetch_pop_rows, record
from test_web_support import Web, next_of, web  # noqa: F401  (fixture)


@contextmanager
def customer_queries(web: Web) -> Iterator[list[str]]:
    """Every SQL statement that reads a customer's pop data (products are only read for pops/cards)."""
    seen: list[str] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "products" in statement:
            seen.append(statement)

    sync_engine = web.daemon.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(sync_engine, "before_cursor_execute", on_execute)


def decide(web: Web, uniqueid: str, customer_id: int | None) -> None:
    web.daemon.bus.publish("agi.decision", {
        "server": "default", "uniqueid": uniqueid, "caller_number": "13800138000", "caller_e164": "+8613800138000",
        "customer_id": customer_id, "queue": "appliances", "priority": 5, "action": "queue", "route": "product",
        "ivr_choice": None, "dialed": "4008001234", "lang": "zh", "at": time.time()})


async def prefetched(web: Web, uniqueid: str) -> None:
    cache = web.daemon.web.hub.cache
    for _ in range(500):
        if cache.peek(("default", uniqueid)) is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{uniqueid} was not prefetched")


async def test_one_query_load_matches_get_customer(web: Web):
    async with web.daemon.engine.connect() as conn:
        full = await get_customer(conn, web.customer_id)
        mine = await fetch_pop_customer(conn, web.customer_id)
        assert await fetch_pop_customer(conn, 999_999) is None
    assert full is not None and mine is not None
    for k, v in mine.items():
        assert v == full[k], k
    assert mine["open_tickets"][0]["sla_deadline"].tzinfo is not None


async def test_a_prefetched_pop_needs_no_query_at_ring_time(web: Web):
    ws = await web.ws(await web.login("alice"))
    decide(web, "pf.1", web.customer_id)
    await prefetched(web, "pf.1")
    with customer_queries(web) as seen:
        web.ring("PJSIP/1001", "pf.1", web.customer_id)
        pop = await next_of(ws, "screen_pop")
        assert seen == []
        # control: a ring nobody prefetched loads the card then
        web.ring("PJSIP/1001", "cold.1", web.customer_id)
        cold = await next_of(ws, "screen_pop")
        assert len(seen) == 1
    assert pop["customer"]["name"] == "王伟先生" and pop["customer"]["vip"] is True
    assert pop["open_complaints"][0]["description"] == "微波炉不加热"
    assert pop["suggestion"]["id"] == "rice-cooker-for-new-microwave"
    assert pop["last_calls"][0]["notes"] == "客户说微波炉不加热，已约上门"
    # The same card, except that cold.1's last calls may also hold pf.1: that call is in progress and
    # the recorder may have written its row by the time cold.1's card is loaded (each pop leaves out
    # only its own call).
    extra = len(cold["last_calls"]) - len(pop["last_calls"])
    assert extra in (0, 1) and cold["last_calls"][extra:] == pop["last_calls"]
    assert all(c["outcome"] is None and c["started_at"] > pop["last_calls"][0]["started_at"]
               for c in cold["last_calls"][:extra])
    assert ({k: v for k, v in cold.items() if k not in ("call", "last_calls")}
            == {k: v for k, v in pop.items() if k not in ("call", "last_calls")})
    await ws.close()


async def test_a_console_edit_invalidates_the_prefetched_pop(web: Web):
    token = await web.login("alice")
    ws = await web.ws(token)
    decide(web, "ed.1", web.customer_id)
    await prefetched(web, "ed.1")
    body = {"family_name": "王", "given_name": "小伟", "title": "先生", "language": "zh", "vip": False,
            "phones": "13800138000"}
    async with web.http.put(f"{web.base}/api/customers/{web.customer_id}", json=body, headers=web.auth(token)) as r:
        assert r.status == 200, await r.text()
    hub = web.daemon.web.hub
    for _ in range(500):
        if hub.cache.peek(("default", "ed.1")) is None:
            break
        await asyncio.sleep(0.01)
    web.ring("PJSIP/1001", "ed.1", web.customer_id)
    pop = await next_of(ws, "screen_pop")
    assert pop["customer"]["name"] == "王小伟先生" and pop["customer"]["vip"] is False
    await ws.close()


async def test_a_wrap_up_or_a_new_complaint_drops_the_customers_cached_pops(web: Web):
    token = await web.login("alice")
    ws = await web.ws(token)
    web.ring("PJSIP/1001", "wr.1", web.customer_id)
    await next_of(ws, "screen_pop")
    web.follow("call.answered", "PJSIP/1001", "wr.1")
    await next_of(ws, "call_update")
    web.follow("call.completed", "PJSIP/1001", "wr.1", reason="caller")
    await next_of(ws, "call_update")
    decide(web, "wr.2", web.customer_id)  # the same customer calls again on another line
    await prefetched(web, "wr.2")
    async with web.http.post(f"{web.base}/api/calls/wrapup", headers=web.auth(token),
                             json={"uniqueid": "wr.1", "disposition": "resolved", "notes": "已解决"}) as r:
        assert r.status == 200, await r.text()
    cache = web.daemon.web.hub.cache
    for _ in range(500):
        if cache.peek(("default", "wr.2")) is None:
            break
        await asyncio.sleep(0.01)
    assert cache.peek(("default", "wr.2")) is None
    with customer_queries(web) as seen:
        web.ring("PJSIP/1001", "wr.2", web.customer_id)
        await next_of(ws, "screen_pop")
        assert len(seen) == 1  # loaded again, fresh
    decide(web, "tk.1", web.customer_id)
    await prefetched(web, "tk.1")
    web.daemon.bus.publish("ticket.created", {"ticket_id": 99, "customer_id": web.customer_id, "at": time.time()})
    for _ in range(500):
        if cache.peek(("default", "tk.1")) is None:
            break
        await asyncio.sleep(0.01)
    assert cache.peek(("default", "tk.1")) is None
    await ws.close()


async def test_unknown_callers_still_pop(web: Web):
    ws = await web.ws(await web.login("alice"))
    decide(web, "un.1", None)
    web.ring("PJSIP/1001", "un.1", None, caller_e164="+8613912345678", caller_number="13912345678")
    pop = await next_of(ws, "screen_pop")
    assert pop["unknown_caller"] is True and pop["customer"] is None
    assert pop["new_customer"] == {"phones": "+8613912345678", "language": "zh"}
    decide(web, "un.2", 999_999)  # a customer deleted meanwhile: the pop says unknown
    web.ring("PJSIP/1001", "un.2", 999_999)
    pop = await next_of(ws, "screen_pop")
    assert pop["unknown_caller"] is True and pop["customer"] is None
    await ws.close()


async def test_the_replayed_pop_is_the_same_encoded_frame(web: Web):
    token = await web.login("alice")
    ws = await web.ws(token)
    web.ring("PJSIP/1001", "rp.1", web.customer_id)
    first = await ws.receive_str(timeout=5)
    while '"screen_pop"' not in first:
        first = await ws.receive_str(timeout=5)
    st = web.daemon.web.hub.current["PJSIP/1001"]
    assert st.frame() is st.frame()
    await ws.close()
    ws = await web.ws(token)
    again = await ws.receive_str(timeout=5)
    while '"screen_pop"' not in again:
        again = await ws.receive_str(timeout=5)
    assert again == first
    await ws.close()


async def test_the_cache_is_bounded_and_expires(web: Web):
    now = [1000.0]
    cache = PopCache(web.daemon.sessionmaker, maxsize=3, ttl_s=60, clock=lambda: now[0])
    try:
        tasks = [cache.prefetch(("default", f"b.{i}"), web.customer_id) for i in range(10)]
        assert len(cache) == 3
        assert [cache.customer_of(("default", f"b.{i}")) for i in (0, 9)] == [web.customer_id] * 2
        card = await cache.card(("default", "b.9"), web.customer_id)
        assert card.customer is not None and card.customer["id"] == web.customer_id
        assert all(t.cancelled() for t in tasks[:7])
        loads = cache.loads
        assert cache.card(("default", "b.9"), web.customer_id).done()  # a hit: no new load
        now[0] += 61
        await cache.card(("default", "b.9"), web.customer_id)  # expired: loaded again
        assert cache.loads == loads + 1
        assert cache.invalidate_customer(web.customer_id) == 3 and len(cache) == 0
    finally:
        await cache.close()


async def test_prefetches_close_together_share_one_query(web: Web):
    async with web.daemon.engine.connect() as conn:
        rows = await fetch_pop_rows(conn, [web.customer_id, 999_999])
    assert list(rows) == [web.customer_id]
    cache = PopCache(web.daemon.sessionmaker, batch_window_s=0.05)
    try:
        with customer_queries(web) as seen:
            tasks = [cache.prefetch(("default", f"bt.{i}"), web.customer_id) for i in range(5)]
            tasks.append(cache.prefetch(("default", "bt.gone"), 999_999))
            cards = await asyncio.gather(*tasks)
        assert len(seen) == 1 and cache.queries == 1 and cache.loads == 6
        assert all(c.customer["id"] == web.customer_id for c in cards[:5]) and not cards[5].found
        assert '"name":"王伟先生"' in cards[0].part
    finally:
        await cache.close()


async def test_a_prefetch_costs_one_task_and_a_batch_one_card_per_customer(web: Web):
    """Few objects per call (each one feeds the cyclic collector, whose pauses delay pops): a prefetch
    waiting for its batch is one task, and the calls of one customer in a batch share its encoded card."""
    cache = PopCache(web.daemon.sessionmaker, batch_window_s=0.05)
    try:
        before = len(asyncio.all_tasks())
        tasks = [cache.prefetch(("default", f"one.{i}"), web.customer_id) for i in range(4)]
        await asyncio.sleep(0)  # every load has started and waits for the batch
        assert not any(t.done() for t in tasks)
        assert len(asyncio.all_tasks()) - before == 4
        cards = await asyncio.gather(*tasks)
        assert all(c is cards[0] for c in cards) and cards[0].found and cache.queries == 1
    finally:
        await cache.close()


async def test_a_ring_flushes_the_batch_its_card_waits_in(web: Web):
    cache = PopCache(web.daemon.sessionmaker, batch_window_s=60.0)  # the window alone would never flush
    try:
        with customer_queries(web) as seen:
            other = cache.prefetch(("default", "fl.0"), web.customer_id)
            cache.prefetch(("default", "fl.1"), web.customer_id)
            await asyncio.sleep(0)
            card = await asyncio.wait_for(cache.card(("default", "fl.1"), web.customer_id), 10)
            assert card.found and (await other) is card
        assert len(seen) == 1 and cache.queries == 1
    finally:
        await cache.close()


def _record(uniqueid: str, customer_id: int, queue: str, *, linkedid: str, ago_s: float,
            ended: bool = False) -> dict[str, Any]:
    """A call record as the recorder gets it from the live state (open while ``ended_at`` is None)."""
    started = datetime.now(timezone.utc) - timedelta(seconds=ago_s)
    return {"server": "default", "uniqueid": uniqueid, "linkedid": linkedid, "caller_number": "13800138000",
            "caller_e164": "+8613800138000", "customer_id": customer_id, "dialed": "4008001234", "route": "product",
            "queue": queue, "priority": 5, "ivr_choice": None, "started_at": started, "queued_at": started,
            "answered_at": None, "ended_at": started + timedelta(seconds=30) if ended else None, "wait_s": None,
            "talk_s": None, "outcome": "abandoned" if ended else None, "agent_interface": None}


async def test_the_ringing_call_is_not_among_its_own_last_calls(web: Web):
    """The recorder writes the call's open row (and a leg sharing its linkedid) before the pop is built:
    neither is a "last call" of that pop, prefetched or loaded at the ring; earlier calls still are."""
    cid = web.customer_id
    rec = CallRecorder(web.daemon.sessionmaker)
    rec.submit(_record("prev.1", cid, "earlier", linkedid="prev.1", ago_s=3600, ended=True))
    rec.submit(_record("cur.1", cid, "current", linkedid="cur.0", ago_s=20))
    rec.submit(_record("cur.1b", cid, "current-leg", linkedid="cur.0", ago_s=10))
    assert await rec.flush() == 3
    ws = await web.ws(await web.login("alice"))
    decide(web, "cur.1", cid)
    await prefetched(web, "cur.1")
    web.ring("PJSIP/1001", "cur.1", cid, linkedid="cur.0")
    pop = await next_of(ws, "screen_pop")
    assert [c["queue"] for c in pop["last_calls"]] == ["earlier", "appliances"]
    # the call ends, the customer calls again, that call's row is written and it rings unprefetched:
    # the ended call is now a last call, the ringing one is not
    for uniqueid, queue in (("cur.1", "current"), ("cur.1b", "current-leg")):
        rec.submit(_record(uniqueid, cid, queue, linkedid="cur.0", ago_s=20, ended=True))
    rec.submit(_record("cur.2", cid, "again", linkedid="cur.2", ago_s=1))
    assert await rec.flush() == 3
    web.ring("PJSIP/1001", "cur.2", cid)
    pop = await next_of(ws, "screen_pop")
    assert [c["queue"] for c in pop["last_calls"]] == ["current-leg", "current", "earlier", "appliances"]
    await ws.close()


async def test_a_batch_leaves_out_each_ringing_call_and_keeps_the_limit(web: Web):
    """Calls batched together (two lines of one customer) leave out their own rows; still 5 last calls."""
    cid = web.customer_id
    rec = CallRecorder(web.daemon.sessionmaker)
    for i in range(6):
        rec.submit(_record(f"hist.{i}", cid, f"hist-{i}", linkedid=f"hist.{i}", ago_s=7200 - i, ended=True))
    rec.submit(_record("line.1", cid, "line-1", linkedid="line.1", ago_s=5))
    rec.submit(_record("line.2", cid, "line-2", linkedid="line.2", ago_s=4))
    assert await rec.flush() == 8
    cache = PopCache(web.daemon.sessionmaker, batch_window_s=0.05)
    try:
        cards = await asyncio.gather(cache.prefetch(("default", "line.1"), cid), cache.prefetch(("default", "line.2"), cid))
        async with web.daemon.engine.connect() as conn:
            alone = await fetch_pop_customer(conn, cid, exclude=[("default", "line.2")])
    finally:
        await cache.close()
    want = [f"hist-{i}" for i in (5, 4, 3, 2, 1)]
    for card in cards:
        assert [c["queue"] for c in card.customer["last_calls"]] == want
    assert alone is not None and [c["queue"] for c in alone["last_calls"]] == ["line-1", *want[:4]]


async def test_each_customer_gets_its_own_last_calls(web: Web):
    """One query serves several customers: each card lists that customer's calls, no one else's."""
    now = datetime.now(timezone.utc)
    async with web.daemon.engine.begin() as conn:
        other = (await conn.execute(insert(customers).values(family_name="李", given_name="娜", created_at=now,
                                                             updated_at=now).returning(customers.c.id))).scalar_one()
    rec = CallRecorder(web.daemon.sessionmaker)
    rec.submit(_record("li.1", other, "li-only", linkedid="li.1", ago_s=60, ended=True))
    assert await rec.flush() == 1
    async with web.daemon.engine.connect() as conn:
        rows = await fetch_pop_rows(conn, [web.customer_id, other])
    assert [c["queue"] for c in record(rows[web.customer_id])["last_calls"]] == ["appliances"]
    assert [c["queue"] for c in record(rows[other])["last_calls"]] == ["li-only"]
