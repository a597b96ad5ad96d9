"""Tickets, org and KB mounted in the real web server (Daemon, AMI off, HTTP on port 0; SQLite + PostgreSQL):
the console's gate (tokens, roles, origins), the from-call link, and notifications over the console websocket."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backoffice_world import scheduler_at, seed_org
from cti.db.tables import calls
from cti.web.notifications import recipients
from test_web_support import Web, next_of, web  # noqa: F401  (fixture)

DAY = 25 * 3600


async def _post(web: Web, token: str | None, path: str, body: dict, **headers: str) -> tuple[int, dict]:
    h = {**(web.auth(token) if token else {}), **headers}
    async with web.http.post(web.base + path, json=body, headers=h) as r:
        return r.status, await r.json()


async def _get(web: Web, token: str | None, path: str) -> tuple[int, dict]:
    async with web.http.get(web.base + path, headers=web.auth(token) if token else {}) as r:
        return r.status, await r.json()


async def test_routes_are_mounted_behind_the_console_gate(web: Web):
    ids = await seed_org(web)
    alice, bob, adam, sue = (await web.login("alice"), await web.login("bob"), await web.login("adam"),
                             await web.login("sue"))

    assert (await _get(web, None, "/api/tickets"))[0] == 401
    assert (await _get(web, None, "/api/kb/search?q=微波炉"))[0] == 401
    status, data = await _get(web, alice, "/api/tickets?view=mine")
    assert status == 200 and data == {"tickets": []}

    # a pop to alice: she may open a ticket on that call, bob may not; a foreign origin may not either
    web.ring("PJSIP/1001", "1763900100.1", web.customer_id)
    ws = await web.ws(alice)
    await next_of(ws, "screen_pop")
    await ws.close()
    body = {"server": "default", "uniqueid": "1763900100.1", "customer_id": web.customer_id,
            "description": "微波炉第二次维修后仍不加热", "product_line": "appliances"}
    assert (await _post(web, bob, "/api/tickets/from-call", body))[0] == 403
    assert (await _post(web, alice, "/api/tickets/from-call", body, Origin="http://evil.example"))[0] == 403
    status, ticket = await _post(web, alice, "/api/tickets/from-call", body)
    assert status == 201, ticket
    assert ticket["owner_id"] == ids["alice"] and ticket["status"] == "open" and ticket["category"] == "complaint"
    async with web.daemon.engine.connect() as conn:
        row = (await conn.execute(select(calls.c.id, calls.c.customer_id, calls.c.agent_interface)
                                  .where(calls.c.uniqueid == "1763900100.1"))).one()
    assert ticket["call_id"] == row.id and row.customer_id == web.customer_id and row.agent_interface == "PJSIP/1001"
    # the same call again: same row, a second ticket
    status, again = await _post(web, alice, "/api/tickets/from-call", {**body, "description": "追加"})
    assert status == 201 and again["call_id"] == row.id

    status, shown = await _get(web, bob, f"/api/tickets/{ticket['id']}")
    assert status == 200 and [h["action"] for h in shown["history"]] == ["created"]
    assert shown["history"][0]["actor"] == "alice"

    # roles: bob is neither owner nor manager; lena (alice's manager) sees it in "team" and may answer
    assert (await _post(web, bob, f"/api/tickets/{ticket['id']}/answer", {"text": "x"}))[0] == 403
    lena = await web.login("lena")
    status, team = await _get(web, lena, "/api/tickets?view=team")
    assert status == 200 and {t["id"] for t in team["tickets"]} == {ticket["id"], again["id"]}
    status, answered = await _post(web, lena, f"/api/tickets/{ticket['id']}/answer", {"text": "已安排更换磁控管"})
    assert status == 200 and answered["status"] == "answered"
    assert (await _post(web, lena, f"/api/tickets/{ticket['id']}/answer", {"text": "again"}))[0] == 409

    # org chart: admin only for writes
    assert (await _get(web, bob, "/api/org"))[0] == 200
    async with web.http.put(web.base + f"/api/org/{ids['bob']}", json={"manager_id": ids["lena"],
                            "product_line": "appliances"}, headers=web.auth(alice)) as r:
        assert r.status == 403
    async with web.http.put(web.base + f"/api/org/{ids['bob']}", json={"manager_id": ids["lena"],
                            "product_line": "appliances"}, headers=web.auth(adam)) as r:
        assert r.status == 200 and (await r.json())["manager_id"] == ids["lena"]

    # KB: everyone searches (Chinese, English), only supervisors/engineers write
    status, found = await _get(web, bob, "/api/kb/search?q=不加热")
    assert status == 200 and [a["id"] for a in found["articles"]] == [ids["article_zh"]]
    status, found = await _get(web, bob, "/api/kb/search?q=battery")
    assert [a["id"] for a in found["articles"]] == [ids["article_en"]]
    status, sug = await _get(web, alice, "/api/kb/suggest?product_line=appliances&ivr=1")
    assert status == 200 and sug["articles"][0]["id"] == ids["article_zh"]
    article = {"title": "Dishwasher error E4", "body": "Check the water supply valve.", "product_line": "appliances"}
    assert (await _post(web, alice, "/api/kb/articles", article))[0] == 403
    assert (await _post(web, sue, "/api/kb/articles", article))[0] == 201
    ed = await web.login("ed")
    assert (await _post(web, ed, "/api/kb/articles", {**article, "title": "E5"}))[0] == 201


async def test_notifications_reach_the_named_agents_consoles(web: Web):
    ids = await seed_org(web)
    alice, lena, ed, sue = (await web.login("alice"), await web.login("lena"), await web.login("ed"),
                            await web.login("sue"))
    ws_alice, ws_lena, ws_ed, ws_sue = (await web.ws(alice), await web.ws(lena), await web.ws(ed), await web.ws(sue))

    # bob creates a ticket owned by alice: alice is told, nobody else
    bob = await web.login("bob")
    ws_bob = await web.ws(bob)
    status, ticket = await _post(web, bob, "/api/tickets", {"customer_id": web.customer_id, "description": "噪音很大",
                                                            "product_line": "appliances"})
    assert status == 201 and ticket["owner_id"] == ids["alice"]
    note = await next_of(ws_alice, "notification")
    assert note["topic"] == "ticket.created" and note["ticket_id"] == ticket["id"]

    # the deadline passes: the scheduler escalates to lena (alice is told too)
    report = await scheduler_at(web, DAY).run_once()
    assert report.tickets.escalated >= 1
    note = await next_of(ws_lena, "notification")
    assert (note["topic"], note["ticket_id"], note["owner_id"], note["from_owner_id"]) == (
        "ticket.escalated", ticket["id"], ids["lena"], ids["alice"])
    assert (await next_of(ws_alice, "notification"))["topic"] == "ticket.escalated"

    # the learning loop: alice asks, ed is told; ed answers, alice is told; sue approves, alice is told
    status, q = await _post(web, alice, "/api/kb/questions", {"question": "烤箱显示 E7 是什么意思？",
                                                              "product_line": "appliances",
                                                              "customer_id": web.customer_id})
    assert status == 201 and q["owner_id"] == ids["ed"]
    note = await next_of(ws_ed, "notification")
    assert note["topic"] == "kb.question" and note["question_id"] == q["id"]
    status, _ = await _post(web, ed, f"/api/kb/questions/{q['id']}/answer", {"answer": "E7：温度传感器故障，需上门更换。"})
    assert status == 200
    note = await next_of(ws_alice, "notification")
    assert note["topic"] == "kb.answered" and "温度传感器" in note["answer"]
    status, art = await _post(web, sue, f"/api/kb/questions/{q['id']}/approve", {"title": "烤箱 E7 故障码"})
    assert status == 201
    note = await next_of(ws_alice, "notification")
    assert note["topic"] == "kb.published" and note["article_id"] == art["id"]
    # bob (outside the chart, creator of the ticket) got none of them
    await ws_bob.send_str('{"type":"ping"}')
    while True:
        m = await ws_bob.receive_json(timeout=5)
        assert m["type"] != "notification", m
        if m["type"] == "pong":
            break
    for ws in (ws_alice, ws_lena, ws_ed, ws_sue, ws_bob):
        await ws.close()


@pytest.mark.parametrize("topic,payload,expected", [
    ("ticket.created", {"owner_id": 3, "created_by": 3}, []),
    ("ticket.created", {"owner_id": 3, "created_by": 1}, [3]),
    ("ticket.escalated", {"owner_id": 4, "from_owner_id": 3}, [4, 3]),
    ("ticket.sla_breached", {"owner_id": 9}, [9]),
    ("ticket.updated", {"action": "answer", "owner_id": 3, "actor_id": 3}, []),
    ("ticket.updated", {"action": "assign", "owner_id": 5, "actor_id": 3}, [5]),
    ("ticket.updated", {"action": "reopen", "owner_id": 5, "actor_id": 2}, [5]),
    ("kb.question", {"owner_id": 7, "asked_by": 2}, [7]),
    ("kb.question.escalated", {"owner_id": 8, "from_owner_id": 7}, [8, 7]),
    ("kb.answered", {"asked_by": 2, "answered_by": 7}, [2]),
    ("kb.published", {"asked_by": 2}, [2]),
    ("kb.published", {"asked_by": None}, []),
    ("call.ringing", {"owner_id": 1}, []),
])
def test_recipients(topic, payload, expected):
    assert recipients(topic, payload) == expected
