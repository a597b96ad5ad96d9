"""Outbound follow-ups wired into the product: the real Daemon (``cti serve``) with its AMI pointed at the
simulated PBX and HTTP on port 0, the policy and rules from ``[outbound]`` settings.

A business event on the bus -> the daemon's scheduler makes the follow-up -> the agent sees it in
``/api/outbound/next`` and dials it through the HTTP API -> the daemon's one OutboundService sends
``Originate`` (agent's phone, context ``cti-outbound``, the customer's E.164 digits) to the PBX -> the
PBX's ``OriginateResponse`` comes back over AMI -> the attempt is recorded as connected and the
agent's console websocket got the ``outbound.dialing`` pop -> the outcome closes it; a second dial the
same week is refused with 409 and the contact cap as the reason.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from cti.app import Daemon
from cti.outbound import repository as repo
from cti.sim.config import SimConfig
from cti.sim.pbx import SimPbx
from outbound_world import free_port, wait_status
from test_web_support import Web, next_of, seed

ALL_DAY = {str(d): "00:00-23:59" for d in range(7)}


@pytest.fixture
async def world(settings):
    agi_port = free_port()
    config = SimConfig(ami_port=0, agi_port=agi_port, speed=20, seed=7, originate_answer_delay=1.0, dynamic_aht=5.0)
    async with SimPbx(config) as pbx:
        originates: list[dict] = []
        pbx.listeners.append(lambda h: originates.append(dict(h)) if dict(h).get("Event") == "OriginateResponse" else None)
        s = settings.replace("ami", port=pbx.ami_port, username="cti", secret="cti-secret", reconnect_min=0.05)
        s = s.replace("agi", port=agi_port).replace("http", port=0)
        s = s.replace("outbound", center_hours=ALL_DAY, customer_hours=ALL_DAY, rules=(
            {"name": "repair-now", "kind": "repair.completed", "reason": "repair check", "delay_hours": 0},))
        daemon = Daemon(s)
        await daemon.start()
        try:
            await daemon.ami.wait_ready()
            cid, ids = await seed(daemon)
            async with aiohttp.ClientSession() as http:
                yield Web(daemon, f"http://127.0.0.1:{daemon.web.port}", http, cid, ids), originates
        finally:
            await daemon.stop()


async def _next(web: Web, token: str, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        async with web.http.get(web.base + "/api/outbound/next", headers=web.auth(token)) as r:
            assert r.status == 200, await r.text()
            found = (await r.json())["followups"]
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


async def _notification(ws, topic: str, timeout: float = 10.0) -> dict:
    async def loop() -> dict:
        while True:
            m = await next_of(ws, "notification", timeout)
            if m["topic"] == topic:
                return m
    return await asyncio.wait_for(loop(), timeout)


async def test_event_to_followup_dial_through_the_pbx_outcome_then_a_blocked_second_dial(world) -> None:
    web, originates = world
    daemon = web.daemon
    assert daemon.outbound.policy.center_hours == ALL_DAY  # [outbound] settings reached the service
    token = await web.login("alice")
    ws = await web.ws(token)

    # a repair reported by another system: the daemon's scheduler applies the configured rule (due at once)
    daemon.bus.publish("outbound.event", {"kind": "repair.completed", "customer_id": web.customer_id,
                                          "key": "RO-17", "detail": "repair order RO-17", "at": time.time()})
    [item] = await _next(web, token)
    assert item["customer"]["id"] == web.customer_id and item["followup"]["reasons"] == ["repair check"]
    assert item["phones"] == [{"e164": "+8613800138000", "allowed": True, "blocked": []}]
    followup_id = item["followup"]["id"]

    # one click: the agent's phone first (PJSIP/1001), then the customer through [cti-outbound]
    async with web.http.post(f"{web.base}/api/outbound/followups/{followup_id}/dial", headers=web.auth(token),
                             json={}) as r:
        assert r.status == 202, await r.text()
        dial = await r.json()
    assert dial["phone"] == "+8613800138000" and dial["customer_id"] == web.customer_id
    pop = await _notification(ws, "outbound.dialing")
    assert pop["attempt_id"] == dial["attempt_id"] and pop["followup_id"] == followup_id
    assert pop["reasons"] == ["repair check"] and pop["customer_id"] == web.customer_id

    assert await wait_status(daemon.sessionmaker, dial["attempt_id"], "connected") == "connected"
    [resp] = [o for o in originates if o.get("ActionID") == dial["action_id"]]
    assert resp["Response"] == "Success" and resp["Context"] == "cti-outbound" and resp["Exten"] == "8613800138000"
    assert resp["Channel"].startswith("PJSIP/1001-")
    async with daemon.sessionmaker() as session:
        attempt = await repo.get_attempt(await session.connection(), dial["attempt_id"])
    assert attempt.uniqueid == resp["Uniqueid"] and attempt.agent_id == web.ids["alice"]
    result = await _notification(ws, "outbound.dial_result")
    assert result["attempt_id"] == dial["attempt_id"] and result["status"] == "connected"

    async with web.http.post(f"{web.base}/api/outbound/attempts/{dial['attempt_id']}/outcome",
                             headers=web.auth(token), json={"outcome": "reached", "notes": "works again"}) as r:
        assert r.status == 200, await r.text()
        done = await r.json()
    assert done["followup_status"] == "done" and done["customer_id"] == web.customer_id

    # the same customer again this week: planned fine, but the dial is refused and says why
    async with web.http.post(web.base + "/api/outbound/followups", headers=web.auth(token),
                             json={"customer_id": web.customer_id, "reason": "satisfaction survey"}) as r:
        assert r.status == 201, await r.text()
        second = (await r.json())["followup_id"]
    sent = len(originates)
    async with web.http.post(f"{web.base}/api/outbound/followups/{second}/dial", headers=web.auth(token),
                             json={}) as r:
        assert r.status == 409, await r.text()
        body = await r.json()
    assert [b["code"] for b in body["blocked"]] == ["contact_cap"]
    assert "1 per 7 days" in body["blocked"][0]["message"]
    await asyncio.sleep(0.2)
    assert len(originates) == sent  # nothing reached the PBX
    await ws.close()


async def test_the_console_page_is_served_behind_the_login_and_linked_from_the_main_console(world) -> None:
    web, _ = world
    async with web.http.get(web.base + "/outbound/console") as r:
        assert r.status == 401
    token = await web.login("alice")
    async with web.http.get(web.base + "/outbound/console", headers=web.auth(token)) as r:
        assert r.status == 200 and "text/html" in r.headers["Content-Type"]
    async with web.http.get(web.base + "/") as r:
        assert 'href="/outbound/console"' in await r.text()
