"""The daemon in cluster mode (bus.url = redis://): two Daemons on the real Redis and PostgreSQL and
one simulated Asterisk. One consumes the AMI stream and runs the ticket scheduler; events reach
both; stopping it hands both over to the other node."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from cti.app import Daemon
from cti.config import Settings
from cti.sim.config import SimConfig
from cti.sim.pbx import SimPbx
from cti.sim.testing import ScriptedAgiServer

REDIS = "redis://127.0.0.1:6379/0"

pytestmark = pytest.mark.parametrize("db_url", [pytest.param("pg", marks=pytest.mark.pg)], indirect=True)


def route(env: dict[str, str]) -> dict[str, str]:
    return {"CTI_QUEUE": "mobile", "CTI_PRIORITY": "5", "CTI_GREETING": "hello", "CTI_CUSTOMER_ID": "", "CTI_LANG": "zh"}


async def until(pred, timeout: float = 15.0) -> None:
    async def go() -> None:
        while not pred():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(go(), timeout)


def node_settings(settings: Settings, pbx: SimPbx, stream: str, server: str, node: str) -> Settings:
    s = settings.replace("ami", host="127.0.0.1", port=pbx.ami_port, username="cti-min", secret="cti-min-secret",
                         server=server, reconnect_min=0.02, reconnect_max=0.1)
    s = s.replace("bus", url=REDIS, stream=stream).replace("cluster", node_id=node, lease_ttl=1.0)
    return s.replace("agi", port=0).replace("http", port=0)


async def test_two_daemons_share_one_asterisk_and_hand_it_over(settings: Settings) -> None:
    tag = uuid.uuid4().hex[:6]
    stream, server = f"cti:test:{tag}", f"pbx-{tag}"
    agi = await ScriptedAgiServer(route).start()
    r = aioredis.from_url(REDIS, decode_responses=True)
    try:
        async with SimPbx(SimConfig(ami_port=0, agi_port=agi.port, speed=20, seed=5)) as pbx:
            a = Daemon(node_settings(settings, pbx, stream, server, f"a-{tag}"))
            b = Daemon(node_settings(settings, pbx, stream, server, f"b-{tag}"))
            await asyncio.wait_for(a.start(), 20)
            try:
                await until(lambda: a.cluster.ami.services and a.cluster.tickets.running)
                await asyncio.wait_for(b.start(), 20)
                await a.ami.wait_ready()
                sub_b = b.bus.subscribe("call.ended")
                assert not b.cluster.ami.services and not b.cluster.tickets.running
                assert a.ami is a.cluster.ami.service(server)  # the web's view is the live service
                assert await r.get(f"{stream}:lease:ami:{server}") == f"a-{tag}"
                call = pbx.place_call("13800138000", "Wang Wei", patience=600, talk_time=2)
                ended = await asyncio.wait_for(sub_b.get(), 20)  # published on a, seen on b
                assert (ended.payload["uniqueid"], ended.payload["server"]) == (call.uniqueid, server)

                await b.cluster.remote_ami(server).queue_add("complaints", "PJSIP/1009", "Wu Fang")  # runs on a
                assert a.cluster.relay.executed == 1 and b.cluster.relay.executed == 0

                await asyncio.wait_for(a.stop(), 20)  # a clean stop releases the leases at once
                await until(lambda: b.cluster.ami.services and b.cluster.tickets.running)
                await b.cluster.ami.service(server).wait_ready()
                assert sum(1 for s in pbx.ami.sessions if s.authenticated) == 1
            finally:
                await asyncio.wait_for(b.stop(), 20)
                await asyncio.wait_for(a.stop(), 20)
    finally:
        await r.delete(*[k async for k in r.scan_iter(match=f"{stream}*")])
        await r.aclose()
        await agi.stop()
