"""Two ``cti serve`` processes on loopback against the real PostgreSQL and Redis and a simulated
Asterisk: SIGKILL of the node that consumes the Asterisk mid-call moves the lease to the other
process, which resyncs; the call ends as exactly one row."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from cti.bus.redis import RedisBus
from cti.db.engine import create_engine, sessionmaker
from cti.db.schema import init_schema
from cti.db.tables import calls
from cti.sim.config import SimConfig
from cti.sim.pbx import SimPbx
from cti.sim.testing import ScriptedAgiServer

REDIS = "redis://127.0.0.1:6379/0"

pytestmark = pytest.mark.parametrize("db_url", [pytest.param("pg", marks=pytest.mark.pg)], indirect=True)


def route(env: dict[str, str]) -> dict[str, str]:
    return {"CTI_QUEUE": "mobile", "CTI_PRIORITY": "5", "CTI_GREETING": "hello", "CTI_CUSTOMER_ID": "", "CTI_LANG": "zh"}


async def until(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


async def spawn(node: str, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    full = {**os.environ, **env, "CTI_CLUSTER_NODE_ID": node}
    full.pop("CTI_CONFIG", None)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from cti.cli import main; main()", "serve",
        env=full, stdout=log.open("wb"), stderr=asyncio.subprocess.STDOUT)


async def test_sigkill_of_the_consuming_process_moves_the_asterisk_without_losing_the_call(
        db_url: str, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    stream, server = f"cti:test:{tag}", f"pbx-{tag}"
    engine = create_engine(db_url)
    await init_schema(engine)
    sm = sessionmaker(engine)
    agi = await ScriptedAgiServer(route).start()
    r = aioredis.from_url(REDIS, decode_responses=True)
    observer = RedisBus(REDIS, node_id=f"observer-{tag}", stream=stream, block_ms=200, reconnect_min=0.02)
    procs: dict[str, asyncio.subprocess.Process] = {}
    try:
        async with SimPbx(SimConfig(ami_port=0, agi_port=agi.port, speed=5, seed=5)) as pbx:
            await observer.start()
            sub = observer.subscribe("call.", "ami.link", maxsize=10_000)
            env = {"CTI_DATABASE_URL": db_url, "CTI_BUS_URL": REDIS, "CTI_BUS_STREAM": stream,
                   "CTI_CLUSTER_LEASE_TTL": "1.0", "CTI_AMI_HOST": "127.0.0.1", "CTI_AMI_PORT": str(pbx.ami_port),
                   "CTI_AMI_USERNAME": "cti-min", "CTI_AMI_SECRET": "cti-min-secret", "CTI_AMI_SERVER": server,
                   "CTI_AMI_RECONNECT_MIN": "0.05", "CTI_AMI_RECONNECT_MAX": "0.5", "CTI_AGI_PORT": "0",
                   "CTI_HTTP_PORT": "0", "CTI_GREETING_SOUNDS_DIR": str(tmp_path / "sounds"),
                   "CTI_LOG_FORMAT": "json"}
            for n in ("a", "b"):
                procs[n] = await spawn(f"{n}-{tag}", env, tmp_path / f"{n}.log")
            lease = f"{stream}:lease:ami:{server}"
            holder = await until(lambda: r.get(lease))
            leader = holder.split("-")[0]
            other = "b" if leader == "a" else "a"
            await until(lambda: sum(1 for s in pbx.ami.sessions if s.authenticated) == 1)

            async def next_msg(topic: str, pred, timeout: float = 30.0):
                async def go():
                    async for m in sub:
                        if m.topic == topic and pred(m.payload):
                            return m.payload
                return await asyncio.wait_for(go(), timeout)

            call = pbx.place_call("13800138000", "Wang Wei", patience=600, talk_time=100_000)
            mine = lambda p: p.get("uniqueid") == call.uniqueid  # noqa: E731
            answered = await next_msg("call.answered", mine)

            async def open_row():
                async with sm() as s:
                    rows = (await s.execute(select(calls).where(calls.c.uniqueid == call.uniqueid))).all()
                return rows and rows[0].answered_at is not None

            await until(open_row)
            t0 = time.monotonic()
            procs[leader].send_signal(signal.SIGKILL)
            await procs[leader].wait()
            resynced = await next_msg("ami.link", lambda p: p["server"] == server and p["state"] == "resynced")
            failover = time.monotonic() - t0
            assert await r.get(lease) == f"{other}-{tag}"
            print(f"process failover: node {other} resynced {failover:.2f} s after SIGKILL of node {leader} "
                  f"(lease_ttl 1.0 s; {resynced.get('calls')} call(s) at resync)")
            await until(lambda: sum(1 for s in pbx.ami.sessions if s.authenticated) == 1)

            call.hangup("agent")
            ended = await next_msg("call.ended", mine)
            assert (ended["outcome"], ended["agent_interface"]) == ("answered", answered["interface"])

            async def closed_rows():
                async with sm() as s:
                    rows = (await s.execute(select(calls).where(calls.c.uniqueid == call.uniqueid))).all()
                return rows if rows and rows[0].ended_at is not None else None

            [row] = await until(closed_rows)
            assert (row.server, row.outcome, row.queue) == (server, "answered", "mobile")
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
        await observer.close()
        await r.delete(*[k async for k in r.scan_iter(match=f"{stream}*")])
        await r.aclose()
        await agi.stop()
        await engine.dispose()
