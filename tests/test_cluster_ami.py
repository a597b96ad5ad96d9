"""Two cti nodes (Redis bus + leases on the real Redis, calls on the real PostgreSQL) and
simulated Asterisk servers over real sockets: one AMI consumer per Asterisk, failover after
a crash with the call in progress ending as exactly one row, events crossing nodes."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from cti.ami.service import AmiService
from cti.bus.redis import RedisBus
from cti.cluster.ami import AmiSupervisor
from cti.config import AmiConfig
from cti.db.engine import sessionmaker
from cti.db.tables import calls
from cti.sim.config import SimConfig
from cti.sim.pbx import SimPbx
from cti.sim.testing import ScriptedAgiServer

REDIS = "redis://127.0.0.1:6379/0"
TTL = 1.0

pytestmark = pytest.mark.parametrize("db_url", [pytest.param("pg", marks=pytest.mark.pg)], indirect=True)


def route(env: dict[str, str]) -> dict[str, str]:
    return {"CTI_QUEUE": "mobile", "CTI_PRIORITY": "5", "CTI_GREETING": "hello", "CTI_CUSTOMER_ID": "", "CTI_LANG": "zh"}


@pytest.fixture
async def agi():
    server = await ScriptedAgiServer(route).start()
    yield server
    await server.stop()


def sim(agi: ScriptedAgiServer) -> SimPbx:
    # the same start epoch on every simulated PBX: their uniqueids collide, like two real Asterisks may
    return SimPbx(SimConfig(ami_port=0, agi_port=agi.port, speed=20, seed=5, start_epoch=1_780_000_000))


@pytest.fixture
async def r():
    client = aioredis.from_url(REDIS, decode_responses=True)
    yield client
    await client.aclose()


class Node:
    """One cti node: its own Redis bus and AMI supervisor; the database is shared."""

    def __init__(self, node_id: str, stream: str, tag: str, endpoints: list[AmiConfig], sm: Any,
                 clock: Any, r: aioredis.Redis) -> None:
        self.node_id = f"{tag}-{node_id}"
        self.bus = RedisBus(REDIS, node_id=self.node_id, stream=stream, block_ms=200, reconnect_min=0.02,
                            reconnect_max=0.2)
        self.sup = AmiSupervisor(endpoints, self._service, redis=r, node_id=self.node_id, ttl=TTL)
        self.sm, self.clock = sm, clock
        self.sub = self.bus.subscribe("call.", maxsize=10_000)

    def _service(self, cfg: AmiConfig) -> AmiService:
        return AmiService(cfg, self.bus, self.sm, clock=self.clock, flush_interval=0.02)

    async def start(self) -> "Node":
        await self.bus.start()
        await self.sup.start()
        return self

    async def stop(self, *, release: bool = True) -> None:
        await self.sup.stop(release=release)
        await self.bus.close()


def endpoint(pbx: SimPbx, server: str) -> AmiConfig:
    return AmiConfig(host="127.0.0.1", port=pbx.ami_port, username="cti-min", secret="cti-min-secret",
                     reconnect_min=0.02, reconnect_max=0.1, server=server)


async def eventually(pred, timeout: float = 15.0) -> None:
    async def go() -> None:
        while not pred():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(go(), timeout)


async def next_msg(sub, topic: str, pred=lambda p: True, timeout: float = 20.0) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async for m in sub:
            if m.topic == topic and pred(m.payload):
                return m.payload
        raise AssertionError("bus closed")

    return await asyncio.wait_for(go(), timeout)


def logged_in(pbx: SimPbx) -> int:
    return sum(1 for s in pbx.ami.sessions if s.authenticated)


async def rows(sm, uniqueid: str) -> list[dict[str, Any]]:
    async with sm() as s:
        return [dict(m) for m in (await s.execute(select(calls).where(calls.c.uniqueid == uniqueid))).mappings()]


@pytest.fixture
def stream():
    return f"cti:test:{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def cleanup(r, stream):
    yield
    await r.delete(stream)


async def test_crash_of_the_consuming_node_moves_the_asterisk_and_the_call_stays_one_row(
        agi, engine, r, stream, cleanup) -> None:
    sm = sessionmaker(engine)
    tag = uuid.uuid4().hex[:6]  # lease names are per server: keep tests apart
    async with sim(agi) as pbx:
        eps = [endpoint(pbx, f"pbx-{tag}")]
        a = await Node("a", stream, tag, eps, sm, pbx.clock.now, r).start()
        b = None
        try:
            await eventually(lambda: a.sup.services)
            await a.sup.service(eps[0].server).wait_ready()
            b = await Node("b", stream, tag, eps, sm, pbx.clock.now, r).start()
            await asyncio.sleep(2 * TTL)  # b keeps competing and never gets it
            assert not b.sup.services and logged_in(pbx) == 1

            call = pbx.place_call("13800138000", "Wang Wei", patience=600, talk_time=100_000)
            is_ours = lambda p: p["uniqueid"] == call.uniqueid  # noqa: E731
            answered = await next_msg(b.sub, "call.answered", is_ours)  # published on a, seen on b
            assert answered["server"] == eps[0].server

            async def open_row() -> None:
                while not [x for x in await rows(sm, call.uniqueid) if x["answered_at"] is not None]:
                    await asyncio.sleep(0.02)

            await asyncio.wait_for(open_row(), 10)

            t0 = time.monotonic()
            await a.stop(release=False)  # the consuming node dies; its lease is left to expire
            await eventually(lambda: b.sup.services)
            svc = b.sup.service(eps[0].server)
            await svc.wait_ready()
            failover = time.monotonic() - t0
            print(f"AMI failover: consumer on node b resynced {failover:.2f} s after node a died (ttl {TTL} s)")
            assert logged_in(pbx) == 1
            agent = svc.state.agents.by_interface(answered["interface"])
            assert agent is not None and agent.state(svc.clock()) == "on_call"  # resync knows the talk

            call.hangup("agent")
            ended = await next_msg(b.sub, "call.ended", is_ours)
            assert (ended["outcome"], ended["agent_interface"]) == ("answered", answered["interface"])
            await svc.recorder.flush()
            [row] = await rows(sm, call.uniqueid)
            assert (row["server"], row["outcome"], row["queue"]) == (eps[0].server, "answered", "mobile")
            assert row["ended_at"] is not None and row["answered_at"] is not None
            await eventually(lambda: agent.state(svc.clock()) != "on_call")  # no stuck agent
        finally:
            if b is not None:
                await b.stop()
            await a.stop()


async def test_two_asterisks_with_colliding_uniqueids_are_kept_apart(agi, engine, r, stream, cleanup) -> None:
    sm = sessionmaker(engine)
    tag = uuid.uuid4().hex[:6]
    async with sim(agi) as p1, sim(agi) as p2:
        eps = [endpoint(p1, f"east-{tag}"), endpoint(p2, f"west-{tag}")]
        nodes = [await Node(n, stream, tag, eps, sm, p1.clock.now, r).start() for n in ("a", "b")]
        try:
            await eventually(lambda: sum(len(n.sup.services) for n in nodes) == 2)
            for n in nodes:
                for svc in n.sup.services.values():
                    await svc.wait_ready()
            assert logged_in(p1) == 1 and logged_in(p2) == 1  # exactly one consumer per Asterisk
            c1 = p1.place_call("13800138000", "Wang Wei", patience=600, talk_time=2)
            c2 = p2.place_call("13900139000", "Li Na", patience=600, talk_time=2)
            assert c1.uniqueid == c2.uniqueid  # the collision this test is about
            watcher = nodes[0].sub
            done: dict[str, dict[str, Any]] = {}
            while len(done) < 2:
                p = await next_msg(watcher, "call.ended", lambda p: p["uniqueid"] == c1.uniqueid)
                done[p["server"]] = p
            assert set(done) == {e.server for e in eps}
            for n in nodes:
                for svc in n.sup.services.values():
                    await svc.recorder.flush()
            got = await rows(sm, c1.uniqueid)
            assert sorted((x["server"], x["caller_number"], x["outcome"]) for x in got) == [
                (f"east-{tag}", "13800138000", "answered"), (f"west-{tag}", "13900139000", "answered")]
        finally:
            for n in nodes:
                await n.stop()


async def test_an_agent_action_on_the_other_node_reaches_the_consuming_node(agi, engine, r, stream, cleanup) -> None:
    from cti.cluster.ami_relay import AmiActionRelay, RemoteAmi, RemoteAmiError

    sm = sessionmaker(engine)
    tag = uuid.uuid4().hex[:6]
    async with sim(agi) as pbx:
        eps = [endpoint(pbx, f"pbx-{tag}")]
        a = await Node("a", stream, tag, eps, sm, pbx.clock.now, r).start()
        b = await Node("b", stream, tag, eps, sm, pbx.clock.now, r).start()
        relays = [AmiActionRelay(n.bus, n.sup.service) for n in (a, b)]
        for relay in relays:
            await relay.start()
        try:
            await eventually(lambda: a.sup.services or b.sup.services)
            owner, other = (a, b) if a.sup.services else (b, a)
            await owner.sup.service(eps[0].server).wait_ready()
            states = other.bus.subscribe("agent.state", maxsize=10_000)
            remote = RemoteAmi(other.bus, eps[0].server, timeout=5)
            await remote.queue_add("complaints", "PJSIP/1009", "Wu Fang", 2)
            st = await next_msg(states, "agent.state", lambda p: p["interface"] == "PJSIP/1009")
            assert (st["name"], st["queues"]["complaints"]["penalty"]) == ("Wu Fang", 2)
            with pytest.raises(RemoteAmiError) as exc:
                await remote.queue_add("complaints", "PJSIP/1009", "Wu Fang")
            assert exc.value.asterisk and exc.value.message == "Unable to add interface: Already there"
            assert sum(relay.executed for relay in relays) == 1  # executed once, on the owner only
            with pytest.raises(RemoteAmiError, match="no node answered"):
                await RemoteAmi(other.bus, "nowhere", timeout=0.5).queue_pause("PJSIP/1009", True)
        finally:
            for relay in relays:
                await relay.stop()
            await b.stop()
            await a.stop()


async def test_a_routing_decision_reaches_only_its_own_asterisks_service(agi, engine) -> None:
    from cti.bus import InMemoryBus

    bus = InMemoryBus()
    async with sim(agi) as p1, sim(agi) as p2:
        sup = AmiSupervisor([endpoint(p1, "east"), endpoint(p2, "west")],
                            lambda cfg: AmiService(cfg, bus, None, clock=p1.clock.now), redis=None, node_id="solo")
        await sup.start()  # one node, no Redis: both run here
        try:
            assert set(sup.services) == {"east", "west"}
            for svc in sup.services.values():
                await svc.wait_ready()
            def live(server: str) -> str:
                return str(sup.services[server].state.snapshot(p1.clock.now())["calls"])

            for server, uid in (("east", "1780000000.7"), ("west", "1780000000.8")):
                bus.publish("agi.decision", {"server": server, "uniqueid": uid, "queue": "mobile", "priority": 5,
                                             "route": "product", "at": p1.clock.now()})
            await eventually(lambda: "1780000000.7" in live("east") and "1780000000.8" in live("west"))
            assert "1780000000.7" not in live("west") and "1780000000.8" not in live("east")
        finally:
            await sup.stop()
