"""AmiService end to end against the simulated PBX (cti.sim) over real sockets:
live state, bus messages, call records, agent actions, and a PBX restart (bare EOF)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from cti.ami import AmiActionError, AmiService
from cti.bus import InMemoryBus
from cti.config import AmiConfig
from cti.db.engine import sessionmaker
from cti.db.tables import calls
from cti.sim.config import SimConfig
from cti.sim.pbx import SimPbx
from cti.sim.testing import ScriptedAgiServer


def route(env: dict[str, str]) -> dict[str, str]:
    return {"CTI_QUEUE": "mobile", "CTI_PRIORITY": "5", "CTI_GREETING": "hello", "CTI_CUSTOMER_ID": "", "CTI_LANG": "zh"}


@pytest.fixture
async def agi():
    server = await ScriptedAgiServer(route).start()
    yield server
    await server.stop()


@pytest.fixture
async def pbx(agi):
    async with SimPbx(SimConfig(ami_port=0, agi_port=agi.port, speed=50, seed=5)) as p:
        yield p


def service(pbx: SimPbx, bus: InMemoryBus, sm=None, user: str = "cti-min") -> AmiService:
    cfg = AmiConfig(host="127.0.0.1", port=pbx.ami_port, username=user, secret=f"{user}-secret",
                    reconnect_min=0.02, reconnect_max=0.1, server="sim")
    return AmiService(cfg, bus, sm, clock=pbx.clock.now, flush_interval=0.02)


async def next_msg(sub, topic: str, pred=lambda p: True, timeout: float = 20.0) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async for m in sub:
            if m.topic == topic and pred(m.payload):
                return m.payload
        raise AssertionError("bus closed")

    return await asyncio.wait_for(go(), timeout)


async def test_a_call_through_the_simulated_pbx_is_live_then_recorded(pbx: SimPbx, engine) -> None:
    bus = InMemoryBus()
    sub = bus.subscribe("call.", maxsize=10_000)
    svc = service(pbx, bus, sessionmaker(engine))
    await svc.start()
    try:
        await svc.wait_ready()
        assert {a.interface for a in svc.state.agents.agents.values()}  # members from QueueStatus
        call = pbx.place_call("13800138000", "Wang Wei", patience=600, talk_time=3)
        ring = await next_msg(sub, "call.ringing")
        assert ring["uniqueid"] == call.uniqueid and ring["queue"] == "mobile"
        agent = svc.state.agents.by_interface(ring["interface"])
        assert agent is not None and agent.state(svc.clock()) == "ringing"
        bus.publish("agi.decision", {"server": "sim", "uniqueid": call.uniqueid, "priority": 5, "route": "product",
                                     "customer_id": None, "caller_e164": "+8613800138000", "at": svc.clock()})
        ended = await next_msg(sub, "call.ended")
        assert (ended["uniqueid"], ended["outcome"], ended["queue"]) == (call.uniqueid, "answered", "mobile")
        assert ended["agent_interface"] == ring["interface"] and ended["talk_s"] == pytest.approx(3, abs=1)
        assert (ended["priority"], ended["route"], ended["caller_e164"]) == (5, "product", "+8613800138000")
        await svc.recorder.flush()
        async with sessionmaker(engine)() as s:
            [row] = (await s.execute(select(calls))).mappings().all()
        assert (row["server"], row["uniqueid"], row["outcome"], row["queue"], row["priority"]) == \
            ("sim", call.uniqueid, "answered", "mobile", 5)
    finally:
        await svc.stop()


async def test_agent_actions_and_asterisk_errors(pbx: SimPbx) -> None:
    bus = InMemoryBus()
    sub = bus.subscribe("agent.state", maxsize=10_000)
    svc = service(pbx, bus)
    await svc.start()
    try:
        await svc.wait_ready()
        await svc.queue_add("complaints", "PJSIP/1009", "Wu Fang", penalty=2)
        st = await next_msg(sub, "agent.state", lambda p: p["interface"] == "PJSIP/1009")
        assert (st["name"], st["state"], st["queues"]["complaints"]["penalty"]) == ("Wu Fang", "ready", 2)
        with pytest.raises(AmiActionError) as exc:
            await svc.queue_add("complaints", "PJSIP/1009", "Wu Fang")
        assert exc.value.message == "Unable to add interface: Already there"
        await svc.queue_pause("PJSIP/1009", True, reason="lunch")
        st = await next_msg(sub, "agent.state", lambda p: p["interface"] == "PJSIP/1009" and p["paused"])
        assert (st["state"], st["paused_reason"]) == ("paused", "lunch")
        await svc.queue_remove("complaints", "PJSIP/1009")
        await next_msg(sub, "agent.state", lambda p: p["interface"] == "PJSIP/1009" and p["state"] == "logged_out")
        assert svc.state.agents.by_interface("PJSIP/1009") is None
        with pytest.raises(AmiActionError) as exc:
            await svc.queue_remove("complaints", "PJSIP/1009")
        assert exc.value.message == "Unable to remove interface: Not there"
    finally:
        await svc.stop()


async def test_pbx_restart_eof_reconnects_and_resyncs(pbx: SimPbx) -> None:
    bus = InMemoryBus()
    sub = bus.subscribe("ami.link", maxsize=1000)
    svc = service(pbx, bus)
    await svc.start()
    try:
        await svc.wait_ready()
        pbx.ami.drop_all()  # what `core restart now` looks like: a bare EOF
        await next_msg(sub, "ami.link", lambda p: p["state"] == "disconnected")
        await next_msg(sub, "ami.link", lambda p: p["state"] == "resynced")
        assert svc.connected and svc.link.connects == 2
    finally:
        await svc.stop()


async def test_the_simulated_asterisk_22_passes_the_version_check(pbx: SimPbx) -> None:
    from structlog.testing import capture_logs

    svc = service(pbx, InMemoryBus())
    with capture_logs() as logs:
        await svc.start()
        try:
            await svc.wait_ready()
        finally:
            await svc.stop()
    assert [(e["event"], e["asterisk_version"], e["ami_version"]) for e in logs
            if e["event"].startswith("ami.pbx_version")] == [("ami.pbx_version", "22.10.1", "11.0.0")]
