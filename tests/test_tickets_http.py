"""REST endpoints of tickets, org and KB over a real loopback HTTP server (SQLite + PostgreSQL).

Authentication is cti/web's job; here ``require`` resolves ``Authorization: Bearer <agent id>``
against the agents table, with the same contract as ``Gate.require(request, *roles)``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from cti.bus import InMemoryBus
from cti.db.engine import sessionmaker
from cti.db.tables import agents
from cti.kb import http as kb_http
from cti.tickets import http as tickets_http
from cti.tickets.scheduler import TicketScheduler
from cti.tickets.testing import build_demo_org

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_require(sm):
    async def require(request: web.Request, *roles: str):
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[7:].isdigit():
            raise web.HTTPUnauthorized(text='{"error": "login required"}', content_type="application/json")
        async with sm() as s:
            row = (await s.execute(select(agents).where(agents.c.id == int(header[7:])))).first()
        if row is None:
            raise web.HTTPUnauthorized(text='{"error": "login required"}', content_type="application/json")
        if roles and row.role not in roles:
            raise web.HTTPForbidden(text='{"error": "forbidden"}', content_type="application/json")
        return row

    return require


@pytest.fixture
async def api(engine):
    sm = sessionmaker(engine)
    async with sm() as s, s.begin():
        org = await build_demo_org(await s.connection(), T0)
    clock = Clock(T0)
    bus = InMemoryBus()
    app = web.Application()
    tickets_http.add_routes(app, sm, make_require(sm), bus=bus, clock=clock)
    kb_http.add_routes(app, sm, make_require(sm), bus=bus, clock=clock)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield client, org, clock, bus, sm
    finally:
        await client.close()


def auth(agent_id: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {agent_id}"}


async def test_ticket_from_a_pop_escalates_when_the_clock_passes_the_deadline(api):
    client, org, clock, bus, sm = api
    sub = bus.subscribe("ticket.")
    r = await client.post("/api/tickets", json={"customer_id": org.customer, "description": "空调不制热",
                                                "product_line": "appliances"}, headers=auth(org.agent))
    assert r.status == 201
    ticket = await r.json()
    assert ticket["owner_id"] == org.agent and ticket["actions"] == ["answer", "resolve"]
    r = await client.get("/api/tickets?view=mine", headers=auth(org.agent))
    assert [t["id"] for t in (await r.json())["tickets"]] == [ticket["id"]]
    clock.now = T0 + timedelta(hours=24, seconds=1)
    await TicketScheduler(sm, bus, clock, None).run_once()
    r = await client.get("/api/tickets?view=mine", headers=auth(org.lead))
    [escalated] = (await r.json())["tickets"]
    assert escalated["id"] == ticket["id"] and escalated["escalation_level"] == 1
    r = await client.get(f"/api/tickets/{ticket['id']}", headers=auth(org.lead))
    assert [h["action"] for h in (await r.json())["history"]] == ["created", "escalated"]
    topics = [sub.get_nowait().topic for _ in range(len(sub))]
    assert topics == ["ticket.created", "ticket.escalated"]


async def test_ticket_errors_map_to_http_statuses(api):
    client, org, clock, bus, sm = api
    r = await client.post("/api/tickets", json={"customer_id": org.customer, "description": "x",
                                                "product_line": "appliances"}, headers=auth(org.agent))
    tid = (await r.json())["id"]
    assert (await client.get("/api/tickets")).status == 401
    r = await client.post(f"/api/tickets/{tid}/close", headers=auth(org.agent))
    assert r.status == 409 and "cannot close a ticket that is open" in (await r.json())["error"]
    r = await client.post(f"/api/tickets/{tid}/answer", json={"text": "x"}, headers=auth(org.engineer))
    assert r.status == 403
    assert (await client.get("/api/tickets/999", headers=auth(org.agent))).status == 404
    r = await client.post("/api/tickets", data="[1]", headers=auth(org.agent))
    assert r.status == 400
    r = await client.post("/api/tickets", json={"customer_id": "abc"}, headers=auth(org.agent))
    assert r.status == 400 and "customer_id" in (await r.json())["error"]
    r = await client.get("/api/tickets?view=bogus", headers=auth(org.agent))
    assert r.status == 400
    r = await client.post(f"/api/tickets/{tid}/answer", json={"text": "fixed"}, headers=auth(org.agent))
    assert r.status == 200 and (await r.json())["status"] == "answered"
    r = await client.post(f"/api/tickets/{tid}/reopen", json={"reason": "still broken"}, headers=auth(org.engineer))
    assert r.status == 200 and (await r.json())["status"] == "reopened"


async def test_org_chart_is_admin_only_to_change(api):
    client, org, clock, bus, sm = api
    r = await client.get("/api/org", headers=auth(org.supervisor))  # agents get names and roles only
    people = (await r.json())["people"]
    assert {p["agent_id"]: p["manager_id"] for p in people}[org.agent] == org.lead
    r = await client.put(f"/api/org/{org.agent}", json={"manager_id": org.head}, headers=auth(org.supervisor))
    assert r.status == 403
    async with sm() as s, s.begin():
        admin = (await s.execute(agents.insert().values(username="root", role="admin", created_at=T0)
                                 .returning(agents.c.id))).scalar_one()
    r = await client.put(f"/api/org/{org.director}", json={"manager_id": org.agent}, headers=auth(admin))
    assert r.status == 400 and "loop" in (await r.json())["error"]
    r = await client.put(f"/api/org/{org.agent}", json={"manager_id": org.head, "product_line": "appliances",
                                                        "department": "care"}, headers=auth(admin))
    assert r.status == 200 and (await r.json())["manager_id"] == org.head


async def test_kb_endpoints_search_suggest_and_the_question_loop(api):
    client, org, clock, bus, sm = api
    r = await client.post("/api/kb/articles", json={"title": "x", "body": "y"}, headers=auth(org.agent))
    assert r.status == 403  # agents read, engineers and supervisors write
    r = await client.post("/api/kb/articles", json={"title": "手机无法充电", "body": "更换充电线并清洁充电口。",
                                                    "product_line": "mobile", "tags": "charging ivr:2"},
                          headers=auth(org.engineer))
    assert r.status == 201
    r = await client.get("/api/kb/search", params={"q": "充电"}, headers=auth(org.agent))
    assert [a["title"] for a in (await r.json())["articles"]] == ["手机无法充电"]
    r = await client.get("/api/kb/suggest", params=[("product_line", "mobile"), ("ivr", "2")], headers=auth(org.agent))
    assert [a["title"] for a in (await r.json())["articles"]] == ["手机无法充电"]
    r = await client.post("/api/kb/questions", json={"question": "洗碗机显示E4是什么意思?", "product_line": "appliances",
                                                     "customer_id": org.customer}, headers=auth(org.agent))
    assert r.status == 201
    qid = (await r.json())["id"]
    r = await client.get("/api/kb/questions?view=mine", headers=auth(org.engineer))
    assert [q["id"] for q in (await r.json())["questions"]] == [qid]
    r = await client.post(f"/api/kb/questions/{qid}/answer", json={"answer": "E4: 进水超时, 检查水龙头。"},
                          headers=auth(org.engineer))
    assert r.status == 200
    r = await client.post(f"/api/kb/questions/{qid}/approve", json={"title": "洗碗机E4故障"}, headers=auth(org.supervisor))
    assert r.status == 201
    r = await client.get("/api/kb/search", params={"q": "E4 洗碗机"}, headers=auth(org.agent))
    assert [a["title"] for a in (await r.json())["articles"]] == ["洗碗机E4故障"]
    r = await client.post(f"/api/kb/questions/{qid}/approve", headers=auth(org.supervisor))
    assert r.status == 400 and "published" in (await r.json())["error"]
