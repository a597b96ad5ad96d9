"""REST side of the console over real HTTP: wrap-up into the calls row, customers from the pop, history, state."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cti.db.tables import calls, customers
from test_web_support import Web, next_of, web  # noqa: F401  (fixture)


async def _row(web: Web, uniqueid: str):
    async with web.daemon.engine.connect() as conn:
        return (await conn.execute(select(calls).where(calls.c.uniqueid == uniqueid))).mappings().first()


async def test_wrap_up_saves_disposition_and_notes_into_the_call_record(web: Web):
    token = await web.login("alice")
    ws = await web.ws(token)
    web.ring("PJSIP/1001", "w.1", web.customer_id)
    await next_of(ws, "screen_pop")
    web.follow("call.answered", "PJSIP/1001", "w.1")
    await next_of(ws, "call_update")
    notes = "客户要求换货\n下周二上门 <b>&'\"\x00"
    async with web.http.post(web.base + "/api/calls/wrapup", headers=web.auth(token),
                             json={"uniqueid": "w.1", "disposition": "follow_up", "notes": notes}) as r:
        assert r.status == 200, await r.text()
    row = await _row(web, "w.1")
    assert row["disposition"] == "follow_up" and row["notes"] == "客户要求换货\n下周二上门 <b>&'\""
    assert row["agent_interface"] == "PJSIP/1001"
    # the recorder's later upsert of the same call leaves the wrap-up alone
    recorder = web.daemon.ami.recorder
    from datetime import datetime, timezone

    recorder.submit({"server": "default", "uniqueid": "w.1", "started_at": datetime.now(timezone.utc),
                     "queue": "appliances", "outcome": "answered", "ended_at": datetime.now(timezone.utc),
                     "agent_interface": "PJSIP/1001", "customer_id": web.customer_id})
    await recorder.flush()
    row = await _row(web, "w.1")
    assert row["outcome"] == "answered" and row["notes"].startswith("客户要求换货")
    await ws.close()


async def test_an_agent_cannot_wrap_up_someone_elses_call(web: Web):
    alice = await web.ws(await web.login("alice"))
    web.ring("PJSIP/1001", "w.2", None)
    await next_of(alice, "screen_pop")
    bob = await web.login("bob")
    async with web.http.post(web.base + "/api/calls/wrapup", headers=web.auth(bob),
                             json={"uniqueid": "w.2", "disposition": "resolved", "notes": "mine now"}) as r:
        assert r.status == 403
    assert await _row(web, "w.2") is None
    sup = await web.login("sue")
    async with web.http.post(web.base + "/api/calls/wrapup", headers=web.auth(sup),
                             json={"uniqueid": "w.2", "disposition": "resolved", "notes": "by supervisor"}) as r:
        assert r.status == 200
    await alice.close()


async def _wrapup(web: Web, token: str, uniqueid: str, notes: str, **extra) -> tuple[int, dict]:
    async with web.http.post(web.base + "/api/calls/wrapup", headers=web.auth(token),
                             json={"uniqueid": uniqueid, "disposition": "follow_up", "notes": notes, **extra}) as r:
        return r.status, await r.json()


async def test_only_the_agent_who_answered_writes_the_wrap_up_and_a_second_save_is_an_edit(web: Web):
    """Issue 17 item 7: the call rang at Alice's phone, Bob answered it. Alice's phone ringing does not
    make it hers; Bob's second save is an edit kept with the first; a save based on an old version is refused."""
    from cti.db.tables import call_wrapups

    alice_token, bob_token = await web.login("alice"), await web.login("bob")
    alice, bob = await web.ws(alice_token), await web.ws(bob_token)
    web.ring("PJSIP/1001", "w.9", web.customer_id)
    await next_of(alice, "screen_pop")
    web.ring("PJSIP/1002", "w.9", web.customer_id)
    await next_of(bob, "screen_pop")
    web.follow("call.ring_stopped", "PJSIP/1001", "w.9", reason="answered_elsewhere")
    web.follow("call.answered", "PJSIP/1002", "w.9")
    await next_of(bob, "call_update")
    status, body = await _wrapup(web, alice_token, "w.9", "alice overwrites")
    assert status == 403 and "answered" in body["error"]
    assert await _row(web, "w.9") is None
    status, body = await _wrapup(web, bob_token, "w.9", "first notes")
    assert (status, body["version"], body["edited"]) == (200, 1, False)
    # the recorder writes the call with its answering agent: still Bob's only
    from datetime import datetime, timezone
    web.daemon.ami.recorder.submit({"server": "default", "uniqueid": "w.9", "started_at": datetime.now(timezone.utc),
                                    "queue": "appliances", "outcome": "answered", "agent_interface": "PJSIP/1002",
                                    "ended_at": datetime.now(timezone.utc), "customer_id": web.customer_id})
    await web.daemon.ami.recorder.flush()
    assert (await _wrapup(web, alice_token, "w.9", "alice again"))[0] == 403
    status, body = await _wrapup(web, bob_token, "w.9", "second notes", base_version=1)
    assert (status, body["version"], body["edited"]) == (200, 2, True)
    status, body = await _wrapup(web, bob_token, "w.9", "stale tab", base_version=1)
    assert status == 409
    sup = await web.login("sue")
    assert (await _wrapup(web, sup, "w.9", "supervisor's correction"))[1]["version"] == 3
    row = await _row(web, "w.9")
    assert row["notes"] == "supervisor's correction" and row["agent_interface"] == "PJSIP/1002"
    async with web.daemon.engine.connect() as conn:
        history = (await conn.execute(select(call_wrapups.c.version, call_wrapups.c.author, call_wrapups.c.notes)
                                      .where(call_wrapups.c.call_id == row["id"])
                                      .order_by(call_wrapups.c.version))).all()
    assert [tuple(h) for h in history] == [(1, "bob", "first notes"), (2, "bob", "second notes"),
                                           (3, "sue", "supervisor's correction")]
    await alice.close()
    await bob.close()


@pytest.mark.parametrize("body", [{"uniqueid": "w.3", "disposition": "made-up"}, {"disposition": "resolved"},
                                  {"uniqueid": "w.3", "disposition": "resolved", "notes": "x" * 5000}])
async def test_wrap_up_validation(web: Web, body):
    token = await web.login("adam")
    async with web.http.post(web.base + "/api/calls/wrapup", headers=web.auth(token), json=body) as r:
        assert r.status == 400


async def test_create_a_customer_from_an_unknown_callers_pop_queues_the_greeting(web: Web):
    requested = []
    real = web.daemon.greetings.request
    web.daemon.greetings.request = lambda *a: requested.append(a) or real(*a)  # spy, still queues for real
    token = await web.login("alice")
    body = {"family_name": "Smith", "given_name": "Anna", "title": "Ms", "language": "en",
            "phones": "+8613912345678", "products": "appliances:Rice Cooker R1:2026-01-02", "vip": True}
    async with web.http.post(web.base + "/api/customers", headers=web.auth(token), json=body) as r:
        assert r.status == 201, await r.text()
        cid = (await r.json())["id"]
    assert requested == [(cid, "Smith", "Anna", "Ms", "en")]
    async with web.http.get(web.base + f"/api/customers/{cid}", headers=web.auth(token)) as r:
        c = (await r.json())["customer"]
    assert c["name"] == "Ms Anna Smith" and c["vip"] is True and c["products"][0]["purchased_on"] == "2026-01-02"
    # the same number again is a conflict, a bad number a validation error
    async with web.http.post(web.base + "/api/customers", headers=web.auth(token), json=body) as r:
        assert r.status == 409
    async with web.http.post(web.base + "/api/customers", headers=web.auth(token), json={**body, "phones": "abc"}) as r:
        assert r.status == 400 and "phones" in (await r.json())["error"]
    # a rename re-queues the greeting; an unchanged name does not
    requested.clear()
    async with web.http.put(web.base + f"/api/customers/{cid}", headers=web.auth(token),
                            json={**body, "given_name": "Annie"}) as r:
        assert r.status == 200 and (await r.json())["greeting_queued"] is True
    async with web.http.put(web.base + f"/api/customers/{cid}", headers=web.auth(token),
                            json={**body, "given_name": "Annie", "email": "a@example.com"}) as r:
        assert (await r.json())["greeting_queued"] is False
    assert requested == [(cid, "Smith", "Annie", "Ms", "en")]
    async with web.daemon.engine.connect() as conn:
        assert (await conn.execute(select(customers.c.email).where(customers.c.id == cid))).scalar() == "a@example.com"


async def test_history_is_searchable_and_agents_see_only_their_calls(web: Web):
    alice = await web.login("alice")
    ws = await web.ws(alice)
    web.ring("PJSIP/1001", "h.1", web.customer_id)
    await next_of(ws, "screen_pop")
    web.follow("call.answered", "PJSIP/1001", "h.1")
    await next_of(ws, "call_update")
    async with web.http.post(web.base + "/api/calls/wrapup", headers=web.auth(alice),
                             json={"uniqueid": "h.1", "disposition": "sale", "notes": "买了电饭煲 rice cooker"}) as r:
        assert r.status == 200
    async with web.http.get(web.base + "/api/calls", headers=web.auth(alice), params={"q": "电饭煲"}) as r:
        found = (await r.json())["calls"]
    assert [c["uniqueid"] for c in found] == ["h.1"]
    async with web.http.get(web.base + "/api/calls", headers=web.auth(alice)) as r:
        mine = {c["uniqueid"] for c in (await r.json())["calls"]}
    assert mine == {"h.1"}  # the seeded old.1 was nobody's call of hers
    sup = await web.login("sue")
    async with web.http.get(web.base + "/api/calls", headers=web.auth(sup), params={"q": "王伟"}) as r:
        rows = (await r.json())["calls"]
    assert {c["uniqueid"] for c in rows} == {"old.1"} and rows[0]["customer_name"] == "王伟先生"
    async with web.http.get(web.base + "/api/calls", headers=web.auth(sup), params={"q": "%"}) as r:
        assert (await r.json())["calls"] == []  # LIKE wildcards are literal
    await ws.close()


async def test_state_controls_say_clearly_when_the_pbx_is_not_connected(web: Web):
    token = await web.login("alice")
    async with web.http.post(web.base + "/api/agent/state", headers=web.auth(token), json={"state": "ready"}) as r:
        assert r.status == 503 and "AMI" in (await r.json())["error"]
    async with web.http.post(web.base + "/api/agent/state", headers=web.auth(token), json={"state": "dancing"}) as r:
        assert r.status == 400


async def test_the_console_page_and_its_assets_are_served_with_a_strict_policy(web: Web):
    async with web.http.get(web.base + "/") as r:
        assert r.status == 200 and "console.js" in await r.text()
        assert "script-src 'self'" in r.headers["Content-Security-Policy"] and r.headers["X-Frame-Options"] == "DENY"
    for asset in ("console.js", "console.css", "i18n.js"):
        async with web.http.get(web.base + "/static/" + asset) as r:
            assert r.status == 200
