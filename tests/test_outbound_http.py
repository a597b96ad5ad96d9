"""The issue's story over loopback HTTP, a real AmiService and the simulated PBX (SQLite + PostgreSQL):
a repair completed -> follow-up due three days later (the test's clock) -> the agent dials it ->
outcome with a new need -> the lead appears for the dealer; a ticket resolved the same week for the
same customer does not produce a second call. Plus roles, dealer visibility and the reports."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert, select

from cti.db.tables import agents, org_people
from cti.outbound import http as outbound_http
from cti.tickets.repository import Actor
from cti.tickets.service import TicketService
from outbound_world import SimWorld, wait_status


def make_require(sm):
    """``Authorization: Bearer <agent id>`` -> the agents row (same contract as cti/web's Gate.require)."""
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
    async with SimWorld(engine) as w:
        app = web.Application()
        outbound_http.add_routes(app, w.sm, None, make_require(w.sm), service=w.svc, bus=w.bus, scheduler=False)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        try:
            yield client, w
        finally:
            await client.close()


def auth(account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.id}"}


async def until(predicate, timeout: float = 10.0):
    async def loop():
        while not (found := await predicate()):
            await asyncio.sleep(0.05)
        return found
    return await asyncio.wait_for(loop(), timeout)


async def test_repair_to_lead_for_the_dealer_and_no_second_call_the_same_week(api) -> None:
    client, w = api
    alice, sup, dealer1, dealer2 = (w.accounts[k] for k in ("alice", "sup", "dealer1", "dealer2"))
    zhang = w.customers["zhang"]
    r = await client.post("/api/outbound/events", json={"kind": "repair.completed", "customer_id": zhang,
                                                        "key": "RO-2026-117"}, headers=auth(alice))
    assert r.status == 403  # agents do not post business events
    r = await client.post("/api/outbound/events", json={"kind": "repair.completed", "customer_id": zhang,
                                                        "key": "RO-2026-117", "detail": "hydraulic pump"},
                          headers=auth(sup))
    [made] = (await r.json())["followups"]
    assert made["created"]
    assert (await (await client.get("/api/outbound/next", headers=auth(alice))).json())["followups"] == []
    w.clock.advance(days=3)
    [fu] = (await (await client.get("/api/outbound/next", headers=auth(alice))).json())["followups"]
    assert fu["followup"]["reasons"] == ["repair check"] and fu["customer"]["family_name"] == "Zhang"
    assert fu["phones"] == [{"e164": w.phones["zhang"], "allowed": True, "blocked": []}]
    dealing = w.bus.subscribe("outbound.dialing")
    r = await client.post(f"/api/outbound/followups/{made['followup_id']}/dial", json={}, headers=auth(alice))
    assert r.status == 202, await r.text()
    dial = await r.json()
    pop = await asyncio.wait_for(dealing.__anext__(), 5)
    assert pop.payload["followup_id"] == made["followup_id"] and pop.payload["interface"] == "PJSIP/1001"
    assert await wait_status(w.sm, dial["attempt_id"], "connected") == "connected"
    r = await client.post(f"/api/outbound/attempts/{dial['attempt_id']}/outcome",
                          json={"outcome": "reached", "notes": "pump fixed", "new_need": "a second excavator"},
                          headers=auth(alice))
    assert r.status == 200, await r.text()
    assert (await r.json())["followup_status"] == "done"
    # the dealer sees the lead (and only their own); the other dealer sees nothing
    [lead] = (await (await client.get("/api/outbound/leads", headers=auth(dealer1))).json())["leads"]
    assert (lead["need"], lead["customer_id"], lead["dealer"]) == ("a second excavator", zhang, "D-SH-01")
    assert (await (await client.get("/api/outbound/leads?dealer=D-SH-01", headers=auth(dealer2))).json())["leads"] == []
    page = await (await client.get("/outbound/dealer", headers=auth(dealer1))).text()
    assert "a second excavator" in page and "D-SH-01 60%" in page and "alice 20%" in page
    r = await client.post(f"/api/outbound/leads/{lead['id']}", json={"status": "won", "result": "ordered"},
                          headers=auth(dealer2))
    assert r.status == 403
    r = await client.post(f"/api/outbound/leads/{lead['id']}", json={"status": "won", "result": "ordered"},
                          headers=auth(dealer1))
    assert (await r.json())["status"] == "won"
    # a ticket resolved two days later, same customer, same week: a follow-up, but no call
    w.clock.advance(days=2)
    tickets = TicketService(w.sm, w.bus, w.clock)
    t = await tickets.create(Actor(sup.id, "sup", "supervisor"), customer_id=zhang, description="noise",
                             owner_id=alice.id)
    await tickets.act(Actor(sup.id, "sup", "supervisor"), t["id"], "resolve", "tightened")

    async def new_followup():
        fus = (await (await client.get("/api/outbound/next?limit=5", headers=auth(dealer1))).json())["followups"]
        return [f for f in fus if f["followup"]["id"] != made["followup_id"]]

    [second] = await until(new_followup)
    w.clock.advance(days=2)  # due now (2 days after the resolution), still within the week
    r = await client.post(f"/api/outbound/followups/{second['followup']['id']}/dial", json={}, headers=auth(alice))
    assert r.status == 409
    body = await r.json()
    assert [b["code"] for b in body["blocked"]] == ["contact_cap"]
    # the frequency report proves it
    freq = await (await client.get("/api/outbound/reports/frequency", headers=auth(sup))).json()
    assert all(c["held"] for c in freq["caps"]) and freq["caps"][0]["max_contacts"] == 1


async def test_handover_report_and_csv(api) -> None:
    client, w = api
    alice, sup = w.accounts["alice"], w.accounts["sup"]
    async with w.sm() as s, s.begin():
        for name in ("alice", "bob"):
            await s.execute(insert(org_people).values(agent_id=w.accounts[name].id, department="outbound-east",
                                                      created_at=w.clock.now, updated_at=w.clock.now))
    fid = (await w.svc.create(w.customers["li"], "purchase check", due_at=w.clock.now, owner_id=alice.id)).followup_id
    dial = await w.svc.dial(alice, fid)
    await wait_status(w.sm, dial["attempt_id"], "connected")
    await w.svc.record_outcome(alice, dial["attempt_id"], "no_answer")
    r = await client.post("/api/outbound/handover", json={"team": "outbound-east", "followup_id": fid,
                                                          "body": "=Li answers after 6 pm"}, headers=auth(alice))
    assert r.status == 201
    assert (await client.get("/api/outbound/reports/handover?team=outbound-east&day=2026-11-24",
                             headers=auth(alice))).status == 403
    rep = await (await client.get("/api/outbound/reports/handover?team=outbound-east&day=2026-11-24",
                                  headers=auth(sup))).json()
    assert (rep["calls"], rep["reached"], rep["outcomes"]) == (1, 0, {"no_answer": 1})
    assert [f["id"] for f in rep["open_followups"]] == [fid]
    assert rep["notes"][0]["body"] == "=Li answers after 6 pm"
    csv_text = await (await client.get("/api/outbound/reports/handover?team=outbound-east&day=2026-11-24&format=csv",
                                       headers=auth(sup))).text()
    assert "outcome,no_answer,1" in csv_text and "'=Li answers after 6 pm" in csv_text


async def test_bad_requests_are_named(api) -> None:
    client, w = api
    alice = w.accounts["alice"]
    r = await client.post("/api/outbound/followups", json={"customer_id": "x", "reason": "r"}, headers=auth(alice))
    assert r.status == 400 and "customer_id" in (await r.json())["error"]
    r = await client.post("/api/outbound/followups", json={"customer_id": 99999, "reason": "r"}, headers=auth(alice))
    assert r.status == 404
    r = await client.post("/api/outbound/attempts/12345/outcome", json={"outcome": "reached"}, headers=auth(alice))
    assert r.status == 404
    r = await client.post("/api/outbound/attempts/1/outcome", json={"outcome": "happy"}, headers=auth(alice))
    assert r.status == 400 and "outcome" in (await r.json())["error"]
    assert (await client.get("/api/outbound/next")).status == 401
    r = await client.post("/api/outbound/followups", json={"customer_id": w.customers["zhao"], "reason": "r"},
                          headers=auth(w.accounts["dealer1"]))
    assert r.status == 403
