"""The whole chain over real sockets: console API -> AMI actions on the simulated PBX -> a call into the
800 line -> the daemon's FastAGI recognizes the caller -> the PBX rings the agent -> AmiService -> bus
-> the hub -> the agent's websocket. Nothing is injected on the bus here."""

from __future__ import annotations

import asyncio
import socket

import pytest

from cti.agents.accounts import set_skills
from cti.app import Daemon
from cti.sim.config import SimConfig
from cti.sim.pbx import SimPbx
from test_web_support import Web, next_of, seed

ALWAYS_OPEN = {str(d): "00:00-23:59" for d in range(7)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def world(settings):
    import aiohttp

    agi_port = free_port()
    # no static members: agents join the queues from the console
    config = SimConfig(ami_port=0, agi_port=agi_port, speed=20, seed=3, agents=(), dynamic_answer_delay=2.0,
                       dynamic_aht=20.0, greeting_seconds=1.0)
    async with SimPbx(config) as pbx:
        s = settings.replace("ami", port=pbx.ami_port, username="cti", secret="cti-secret", reconnect_min=0.05)
        s = s.replace("agi", port=agi_port).replace("http", port=0).replace("routing", hours=ALWAYS_OPEN)
        daemon = Daemon(s)
        await daemon.start()
        try:
            await daemon.ami.wait_ready()
            cid, ids = await seed(daemon)
            async with daemon.engine.begin() as conn:  # the seeded customer has an open complaint
                await set_skills(conn, ids["alice"], {"complaints": 0, "appliances": 1})
            async with aiohttp.ClientSession() as http:
                yield Web(daemon, f"http://127.0.0.1:{daemon.web.port}", http, cid, ids), pbx
        finally:
            await daemon.stop()


async def _state(ws, want: str, timeout: float = 10.0) -> dict:
    async def loop() -> dict:
        while True:
            m = await next_of(ws, "agent_state", timeout)
            if m["state"] == want:
                return m
    return await asyncio.wait_for(loop(), timeout)


async def test_console_state_controls_and_a_real_pop_through_the_simulated_pbx(world):
    web, pbx = world
    token = await web.login("alice")
    ws = await web.ws(token)

    async def state(body: dict) -> None:
        async with web.http.post(web.base + "/api/agent/state", headers=web.auth(token), json=body) as r:
            assert r.status == 200, await r.text()

    await state({"state": "ready"})                      # QueueAdd complaints + appliances, unpause
    assert (await _state(ws, "ready"))["interface"] == "PJSIP/1001"
    await state({"state": "paused", "reason": "lunch"})  # QueuePause with the reason
    assert (await _state(ws, "paused"))["paused_reason"] == "lunch"
    await state({"state": "ready"})                      # already a member: only unpauses
    await _state(ws, "ready")

    call = pbx.place_call("13800138000", "Wang Wei", patience=600)
    pop = await next_of(ws, "screen_pop", timeout=20)
    # the open complaint routed the call to the complaints queue (the daemon's real FastAGI decision)
    assert pop["call"]["uniqueid"] == call.uniqueid and pop["call"]["queue"] == "complaints"
    assert pop["call"]["priority"] == 15 and pop["call"]["route"] == "complaint"  # complaint 10 + VIP 5
    assert pop["customer"]["id"] == web.customer_id and pop["customer"]["name"] == "王伟先生"
    # an open complaint on the complaints line: no cross-sell (http.crosssell_skip_complaints, issue 18)
    assert pop["open_complaints"] and pop["suggestion"] is None
    statuses = []
    while "ended" not in statuses:
        statuses.append((await next_of(ws, "call_update", timeout=30))["status"])
    assert statuses[0] == "connected"

    async with web.http.post(web.base + "/api/calls/wrapup", headers=web.auth(token),
                             json={"uniqueid": call.uniqueid, "disposition": "resolved", "notes": "sim call"}) as r:
        assert r.status == 200
    await state({"state": "logged_out"})                 # QueueRemove
    await _state(ws, "logged_out")
    await ws.close()
