"""Pops across processes: two ``cti serve`` processes on the real PostgreSQL and Redis and a simulated
Asterisk. The agents log in on the node that consumes the Asterisk, open their websockets on the
OTHER node, and a call through the PBX pops on that node (AMI -> bus on node A -> Redis -> hub and
websocket on node B). The login token of node A is accepted by node B."""

from __future__ import annotations

import asyncio
import signal
import socket
import types
import uuid
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from cti.db.engine import create_engine
from cti.db.schema import init_schema
from cti.sim.config import SimConfig
from cti.sim.pbx import SimPbx
from cti.sim.testing import ScriptedAgiServer
from test_cluster_processes import REDIS, route, spawn, until
from test_web_support import PASSWORD, next_of, seed

pytestmark = pytest.mark.parametrize("db_url", [pytest.param("pg", marks=pytest.mark.pg)], indirect=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_an_agent_on_the_other_node_gets_the_pop(db_url: str, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    stream, server = f"cti:test:{tag}", f"pbx-{tag}"
    engine = create_engine(db_url)
    await init_schema(engine)
    await seed(types.SimpleNamespace(engine=engine))  # alice PJSIP/1001, bob PJSIP/1002 (queue "mobile")
    agi = await ScriptedAgiServer(route).start()
    r = aioredis.from_url(REDIS, decode_responses=True)
    procs: dict[str, asyncio.subprocess.Process] = {}
    ports = {"a": free_port(), "b": free_port()}
    try:
        async with SimPbx(SimConfig(ami_port=0, agi_port=agi.port, speed=5, seed=7)) as pbx, \
                aiohttp.ClientSession() as http:
            env = {"CTI_DATABASE_URL": db_url, "CTI_BUS_URL": REDIS, "CTI_BUS_STREAM": stream,
                   "CTI_CLUSTER_LEASE_TTL": "1.0", "CTI_AMI_HOST": "127.0.0.1", "CTI_AMI_PORT": str(pbx.ami_port),
                   "CTI_AMI_USERNAME": "cti-min", "CTI_AMI_SECRET": "cti-min-secret", "CTI_AMI_SERVER": server,
                   "CTI_AMI_RECONNECT_MIN": "0.05", "CTI_AMI_RECONNECT_MAX": "0.5", "CTI_AGI_PORT": "0",
                   "CTI_GREETING_SOUNDS_DIR": str(tmp_path / "sounds"), "CTI_LOG_FORMAT": "json"}
            for n in ("a", "b"):
                procs[n] = await spawn(f"{n}-{tag}", {**env, "CTI_HTTP_PORT": str(ports[n])}, tmp_path / f"{n}.log")
            holder = (await until(lambda: r.get(f"{stream}:lease:ami:{server}"))).split("-")[0]
            other = "b" if holder == "a" else "a"
            consumer, listener = f"http://127.0.0.1:{ports[holder]}", f"http://127.0.0.1:{ports[other]}"

            async def up(base: str) -> bool:
                try:
                    async with http.get(base + "/") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            await until(lambda: up(consumer))
            await until(lambda: up(listener))
            await until(lambda: sum(1 for s in pbx.ami.sessions if s.authenticated) == 1)
            sockets = []
            for user in ("alice", "bob"):  # tokens from the consuming node, websockets on the other node
                async with http.post(consumer + "/api/login", json={"username": user, "password": PASSWORD}) as resp:
                    assert resp.status == 200, await resp.text()
                    token = (await resp.json())["token"]
                ws = await http.ws_connect(listener + "/ws", headers={"Authorization": f"Bearer {token}"})
                assert (await ws.receive_json(timeout=5))["type"] == "hello"
                sockets.append(ws)

            call = pbx.place_call("13800138000", "Wang Wei", patience=600, talk_time=100_000)
            done, pending = await asyncio.wait([asyncio.create_task(next_of(ws, "screen_pop", timeout=30))
                                                for ws in sockets], return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
            pop = done.pop().result()
            assert pop["call"]["uniqueid"] == call.uniqueid and pop["call"]["queue"] == "mobile"
            call.hangup("agent")
            for ws in sockets:
                await ws.close()
    finally:
        for p in procs.values():
            if p.returncode is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                await asyncio.wait_for(p.wait(), 15)
            except asyncio.TimeoutError:
                p.kill()
                await p.wait()
        keys = [k async for k in r.scan_iter(match=f"{stream}*")]
        if keys:
            await r.delete(*keys)
        await r.aclose()
        await agi.stop()
        await engine.dispose()
