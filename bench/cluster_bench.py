"""Cluster benchmark: FastAGI ``incoming`` calls against one ``cti serve`` node, then against two nodes
(separate processes sharing one PostgreSQL database and one Redis stream, AMI off), plus the latency of a
screen pop that crosses nodes.

    python bench/cluster_bench.py                            # 20,000 customers, 3,000 calls, 64 in flight
    python bench/cluster_bench.py --customers 50000 --calls 5000 --concurrency 64 --pops 300

* Throughput: a closed loop of ``--concurrency`` callers (cti.agi.peer's Asterisk 22 environment,
  ``200 result=1`` replies, 90 % known callers) runs here; with two nodes the calls alternate between
  the nodes' FastAGI ports. Printed: calls per second (wall clock), CPU microseconds per call summed
  over the node processes (/proc utime+stime), p50/p99 latency, and the two-node/one-node ratio.
  The load generator shares the machine's cores with the nodes (``os.cpu_count()`` is printed): on
  2 cores the ratio is bounded by the CPU left, not by cti.
* Cross-node pop: an agent logs in on node B (HTTP, token) and opens its websocket there; this
  process publishes ``call.ringing`` for the agent's interface on the cluster's Redis stream (as the
  node consuming the Asterisk does); the time from publish to the ``screen_pop`` frame on B is
  measured (p50/p99 over ``--pops`` pops, one at a time).

Needs PostgreSQL (``--pg``, trust auth) and Redis (``--redis``) on this machine; creates and drops its
own database and stream.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PASSWORD = "bench password"
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_of(pid: int) -> float:
    """utime + stime of a process in seconds (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


# --------------------------------------------------------------------------- set-up
async def make_database(admin: str, customers: int) -> tuple[str, str]:
    import asyncpg
    from make_customers import rows

    from cti.agents.accounts import add_agent
    from argon2 import PasswordHasher
    from cti.customers.importer import import_customers
    from cti.db.engine import create_engine
    from cti.db.schema import init_schema

    name = "cti_bench_" + uuid.uuid4().hex[:8]
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{name}"
    engine = create_engine(url)
    await init_schema(engine)
    with tempfile.NamedTemporaryFile("w", suffix=".csv", encoding="utf-8", delete=False) as fh:
        fh.write("phones,family_name,given_name,title,language,vip,dealer,email,products\n")
        fh.writelines(rows(customers))
    t0 = time.perf_counter()
    report = await import_customers(engine, Path(fh.name), "CN")
    os.unlink(fh.name)
    print(f"PostgreSQL {name}: imported {report.created} customers in {time.perf_counter() - t0:.1f} s", flush=True)
    pw = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)  # cheap, still argon2id
    async with engine.begin() as c:
        await add_agent(c, "benchagent", pw, display_name="Bench", role="agent", interface="PJSIP/7001",
                        language="zh", skills={"mobile": 0})
    await engine.dispose()
    return name, url


async def drop_database(admin: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


class Node:
    def __init__(self, name: str, db_url: str, redis: str, stream: str, log_dir: Path) -> None:
        self.name, self.agi_port, self.http_port = name, free_port(), free_port()
        env = {**os.environ, "CTI_DATABASE_URL": db_url, "CTI_BUS_URL": redis, "CTI_BUS_STREAM": stream,
               "CTI_CLUSTER_NODE_ID": name, "CTI_AMI_ENABLED": "false", "CTI_AGI_HOST": "127.0.0.1",
               "CTI_AGI_PORT": str(self.agi_port), "CTI_HTTP_HOST": "127.0.0.1", "CTI_HTTP_PORT": str(self.http_port),
               "CTI_GREETING_SOUNDS_DIR": str(log_dir / "sounds"), "CTI_LOG_FORMAT": "json", "CTI_LOG_LEVEL": "warning"}
        env.pop("CTI_CONFIG", None)
        self.proc = subprocess.Popen([sys.executable, "-c", "from cti.cli import main; main()", "serve"], env=env,
                                     stdout=(log_dir / f"{name}.log").open("wb"), stderr=subprocess.STDOUT)

    async def ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", self.http_port)
                w.close()
                _, w = await asyncio.open_connection("127.0.0.1", self.agi_port)
                w.close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"node {self.name} did not start (see its log)") from None
                await asyncio.sleep(0.2)

    def cpu(self) -> float:
        return cpu_of(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------- FastAGI load
async def closed_loop(ports: list[int], calls: int, concurrency: int, customers: int, seed: int) -> tuple[float, list[float]]:
    """``calls`` FastAGI sessions, ``concurrency`` at a time, alternating over ``ports``: (wall s, latencies)."""
    from agi_bench import _Caller

    from cti.agi.peer import asterisk_env, environment_block

    rnd = random.Random(seed)
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    counter = iter(range(calls))

    async def worker() -> None:
        for i in counter:
            port = ports[i % len(ports)]
            known = rnd.random() < 0.9
            number = f"138{rnd.randrange(customers):08d}" if known else f"139{rnd.randrange(10**8):08d}"
            block = environment_block(asterisk_env(uniqueid=f"1795372412.{seed}{i}", callerid=number,
                                                   calleridname="Wang Wei", port=port))
            t0 = time.perf_counter()
            done = loop.create_future()
            await loop.create_connection(lambda: _Caller(block, done), "127.0.0.1", port)
            commands = await done
            latencies.append(time.perf_counter() - t0)
            if commands < 3:
                raise AssertionError(f"FastAGI session with {commands} commands (port {port})")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, latencies


async def measure(nodes: list[Node], args: argparse.Namespace, seed: int) -> dict[str, float]:
    ports = [n.agi_port for n in nodes]
    await closed_loop(ports, min(500, args.calls), args.concurrency, args.customers, seed)  # warm-up
    c0, g0 = sum(n.cpu() for n in nodes), time.process_time()
    wall, lat = await closed_loop(ports, args.calls, args.concurrency, args.customers, seed + 1)
    c1, g1 = sum(n.cpu() for n in nodes), time.process_time()
    lat.sort()
    return {"cps": args.calls / wall, "cpu_us": (c1 - c0) / args.calls * 1e6,
            "gen_us": (g1 - g0) / args.calls * 1e6,
            "p50": lat[len(lat) // 2] * 1e3, "p99": lat[int(len(lat) * 0.99)] * 1e3}


# --------------------------------------------------------------------------- cross-node pop
async def pop_latency(node_b: Node, redis: str, stream: str, n: int) -> list[float]:
    import json

    import aiohttp

    from cti.bus.redis import RedisBus

    bus = RedisBus(redis, node_id=f"bench-publisher-{uuid.uuid4().hex[:6]}", stream=stream, block_ms=200)
    await bus.start()
    base = f"http://127.0.0.1:{node_b.http_port}"
    out: list[float] = []
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(base + "/api/login", json={"username": "benchagent", "password": PASSWORD}) as r:
                assert r.status == 200, await r.text()
                token = (await r.json())["token"]
            ws = await http.ws_connect(base + "/ws", headers={"Authorization": f"Bearer {token}"})
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
            for i in range(n + 20):  # 20 warm-up pops
                uid = f"1795400000.{i}"
                t0 = time.perf_counter()
                bus.publish("call.ringing", {
                    "server": "default", "uniqueid": uid, "linkedid": uid, "caller_number": "13800000001",
                    "caller_name": "", "caller_e164": "+8613800000001", "customer_id": 2, "queue": "mobile",
                    "interface": "PJSIP/7001", "member_name": "Bench", "priority": 5, "route": "product",
                    "lang": "zh", "dialed": "4008001234", "at": time.time()})
                while True:
                    msg = json.loads((await ws.receive(timeout=10)).data)
                    if msg["type"] == "screen_pop" and msg["call"]["uniqueid"] == uid:
                        break
                if i >= 20:
                    out.append(time.perf_counter() - t0)
                bus.publish("call.ended", {"server": "default", "uniqueid": uid, "linkedid": uid,
                                           "interface": "PJSIP/7001", "outcome": "answered", "at": time.time()})
                await asyncio.sleep(0.02)
            await ws.close()
    finally:
        await bus.close()
    return out


# --------------------------------------------------------------------------- main
async def amain(args: argparse.Namespace) -> None:
    import redis.asyncio as aioredis

    stream = f"cti:bench:{uuid.uuid4().hex[:6]}"
    load0 = os.getloadavg()[0]
    name, url = await make_database(args.pg, args.customers)
    logs = Path(tempfile.mkdtemp(prefix="cti-cluster-bench-"))
    nodes: list[Node] = []
    results: dict[str, list[dict[str, float]]] = {"1 node": [], "2 nodes": []}
    pops: list[float] = []
    try:
        nodes = [Node("bench-a", url, args.redis, stream, logs), Node("bench-b", url, args.redis, stream, logs)]
        for n in nodes:
            await n.ready()
        for rnd in range(args.rounds):  # the same two processes: one node, then both, each round
            results["1 node"].append(await measure(nodes[:1], args, 100 * rnd))
            results["2 nodes"].append(await measure(nodes, args, 100 * rnd + 50))
        pops = await pop_latency(nodes[1], args.redis, stream, args.pops)
    finally:
        for n in nodes:
            n.stop()
        r = aioredis.from_url(args.redis)
        keys = [k async for k in r.scan_iter(match=f"{stream}*")]
        if keys:
            await r.delete(*keys)
        await r.aclose()
        await drop_database(args.pg, name)

    print(f"\n{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end ({load0:.1f} at the start); "
          f"{args.calls} calls per round, "
          f"{args.concurrency} in flight, {args.rounds} rounds (median shown, all rounds in brackets); logs {logs}")
    med = {}
    for label, rows in results.items():
        med[label] = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        m = med[label]
        each = ", ".join(f"{r['cps']:.0f}" for r in rows)
        print(f"{label:8s}: {m['cps']:7.0f} calls/s  [{each}]  "
              f"CPU {m['cpu_us']:6.0f} µs/call (nodes) + {m['gen_us']:.0f} (load generator)  p50 {m['p50']:.1f} ms  p99 {m['p99']:.1f} ms")
    print(f"ratio 2 nodes / 1 node: {med['2 nodes']['cps'] / med['1 node']['cps']:.2f}x calls/s, "
          f"{med['2 nodes']['cpu_us'] / med['1 node']['cpu_us']:.2f}x CPU per call")
    if pops:
        pops.sort()
        print(f"cross-node pop (Redis publish -> screen_pop on node B's websocket), {len(pops)} pops: "
              f"p50 {pops[len(pops) // 2] * 1e3:.1f} ms, p99 {pops[int(len(pops) * 0.99)] * 1e3:.1f} ms, "
              f"max {pops[-1] * 1e3:.1f} ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pops", type=int, default=300)
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    asyncio.run(amain(p.parse_args()))


if __name__ == "__main__":
    main()
