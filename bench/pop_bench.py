"""Screen-pop latency and memory: cti's websocket hub against a bare aiohttp websocket server, same run.

* ``cti``: the real Daemon (AMI off, SQLite database with ``--clients`` agent accounts and
  customers with products, complaints and past calls) in its own process. Every client is
  authenticated (a token signed with the server's secret, checked on the upgrade, account
  looked up in the database). Events enter the daemon's bus through a local TCP side channel
  as the FastAGI server and AmiService would publish them: ``agi.decision`` and ``call.queued``
  (QueueCallerJoin) ``--lead`` s before ``call.ringing`` (AgentCalled), so the hub prefetches the
  customer part of the pop (cti/web/popcache.py) as it does on a PBX;
  ``cold``: the ring alone, the card loaded from the database on the ring. 80 % of the callers
  are known customers, 20 % unknown.
* ``bare``: an aiohttp server that keeps a dict interface -> websocket and, per ring event,
  json-dumps the same pop payload (a real pop of a known customer) and sends it to that one
  socket. No auth, no bus, no database; the same websocket settings (30 s heartbeat, not rounded).

Both run against the same client process (``--clients`` websockets from one aiohttp client,
opened at ``--connect-rate`` per s for both) and injector (this process), alternating ``--rounds``
times (the box is shared: medians are reported). Injection starts ``--settle`` s after the first
connection: both servers' websocket heartbeats (30 s) run during the measured window, as they do
all day in a call center. Latency = the client's receive time - the time the injector sent the
ring event (carried in the event's ``at``, shown in the pop as ``call.ringing_at``), in ms: a
server stalled before reading the event pays for it. The client process freezes its heap and
turns its collector off once connected, so its own pauses are not measured. Memory per idle
connection = (server RSS with every client connected and idle - RSS before the first connection)
/ clients. Server GC pauses during the injection are printed.

Diagnostics (environment): POP_BENCH_SLOW=1 lists the pops over 5 ms; POP_BENCH_STALLS=1 lists every
event-loop callback (with its task) and GC pass over 3 ms in each process, POP_BENCH_CENSUS=1 adds
what the young generations hold at the window's first gen1 passes; POP_BENCH_PROFILE=1 profiles
the cti server while injecting.

    flock /tmp/bench.lock .venv/bin/python bench/pop_bench.py [--clients 5000] [--rate 200] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

SECRET = "bench-secret-bench-secret-bench-secret"
HERE = Path(__file__).resolve()


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def iface(i: int) -> str:
    return f"PJSIP/b{i:05d}"


# ---------------------------------------------------------------- database
async def prepare_db(db_path: Path, clients: int, customers: int) -> list[int]:
    from sqlalchemy import insert

    from cti.agents.passwords import hash_password
    from cti.customers.records import customer_from_fields
    from cti.customers.repository import add_customer
    from cti.db.engine import create_engine
    from cti.db.schema import init_schema
    from cti.db.tables import agents, calls, tickets

    eng = create_engine(f"sqlite+aiosqlite:///{db_path}")
    await init_schema(eng)
    h = hash_password("bench-password")
    now = datetime.now(timezone.utc)
    ids = []
    async with eng.begin() as conn:
        await conn.execute(insert(agents), [{"username": f"b{i:05d}", "display_name": f"Agent {i}", "role": "agent",
                                             "interface": iface(i), "password_hash": h, "language": "zh",
                                             "experienced": False, "active": True, "created_at": now}
                                            for i in range(clients)])
        for n in range(customers):
            rec = customer_from_fields({"family_name": "王", "given_name": f"客{n}", "title": "先生", "vip": "yes" if n % 7 == 0 else "no",
                                        "phones": f"1380013{n:04d}",
                                        "products": f"appliances:微波炉 M{n}:{(date.today() - timedelta(days=n % 300)).isoformat()};"
                                                    f"mobile:Phone {n}:2025-01-01"}, "CN")
            cid = await add_customer(conn, rec)
            ids.append(cid)
            if n % 3 == 0:
                await conn.execute(insert(tickets).values(customer_id=cid, description="不加热", status="open",
                                                          sla_deadline=now + timedelta(hours=8), created_at=now,
                                                          updated_at=now))
            await conn.execute(insert(calls), [{"server": "default", "uniqueid": f"old.{n}.{k}", "customer_id": cid,
                                                "started_at": now - timedelta(days=k + 1), "queue": "appliances",
                                                "outcome": "answered", "disposition": "resolved",
                                                "notes": "客户来电咨询保修，已解答"} for k in range(3)])
    await eng.dispose()
    return ids


# ---------------------------------------------------------------- diagnostics
def trace_stalls(who: str) -> Any:
    """POP_BENCH_STALLS=1: record every event-loop callback and GC pause longer than 3 ms in this process
    (wall time, duration, what ran); the returned function prints them (the window from ``since``)."""
    if not os.environ.get("POP_BENCH_STALLS"):
        return lambda since=0.0, arm=False: None
    armed = [0.0]  # the census looks at the measured window only
    from asyncio import events

    stalls: list[tuple[float, float, str]] = []
    run = events.Handle._run
    gc_start, gc_cpu = [0.0], [0.0]

    def describe(handle: Any) -> str:
        """The task a handle steps (a TaskStepMethWrapper only shows its task to the collector)."""
        cb = handle._callback
        task = getattr(cb, "__self__", None)
        if type(cb).__name__ == "TaskStepMethWrapper":
            task = next((r for r in gc.get_referents(cb) if isinstance(r, asyncio.Task)), None)
        if isinstance(task, asyncio.Task):
            coro = task.get_coro()
            return f"task {task.get_name()} {getattr(coro, '__qualname__', coro)}"
        return repr(handle)[:160]

    def timed(self: Any) -> None:
        t, c = time.perf_counter(), time.thread_time()
        run(self)
        d = time.perf_counter() - t
        if d > 0.003:  # thread CPU time well below the wall time: the OS ran something else meanwhile
            stalls.append((time.time(), d * 1000,
                           f"(cpu {(time.thread_time() - c) * 1000:.1f} ms) {describe(self)}"))

    census: list[str] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            if (info["generation"] == 1 and len(census) < 3 and os.environ.get("POP_BENCH_CENSUS")
                    and time.time() > armed[0] > 0):
                from collections import Counter  # what the young generations hold (diagnostic: slow)
                young = gc.get_objects(0) + gc.get_objects(1)
                top = Counter(type(o).__qualname__ for o in young).most_common(12)
                fan = sorted(((len(gc.get_referents(o)), type(o).__qualname__) for o in young), reverse=True)[:6]
                census.append(f"{len(young)} young: " + ", ".join(f"{k} {v}" for k, v in top)
                              + f"; widest: {fan}")
                del young
            gc_start[0], gc_cpu[0] = time.perf_counter(), time.thread_time()
        elif (d := time.perf_counter() - gc_start[0]) > 0.003:
            stalls.append((time.time(), d * 1000, f"(cpu {(time.thread_time() - gc_cpu[0]) * 1000:.1f} ms) "
                                                  f"gc gen{info['generation']} collected {info['collected']}"))

    events.Handle._run = timed  # type: ignore[method-assign]
    gc.callbacks.append(on_gc)

    def report(since: float = 0.0, arm: bool = False) -> None:
        if arm:  # the measured window starts: the census may look
            armed[0] = since
            return
        for line in census:
            print(f"  {who} gen1 census: {line}", file=sys.stderr)
        for at, ms, what in stalls:
            if at >= since:
                print(f"  {who} stall at {at:.3f}: {ms:.1f} ms {what}", file=sys.stderr)
    return report


# ---------------------------------------------------------------- servers (child processes)
def cpu_report(cpu0: float, rings: int) -> None:
    """Server CPU (all threads) while events were injected, per ring: less noisy than latency on a shared box."""
    used = time.process_time() - cpu0
    print(f"  server CPU while injecting: {used:.2f} s, {used * 1000 / max(1, rings):.2f} ms per ring", file=sys.stderr)


async def serve_cti(db_path: str) -> None:
    import logging

    import structlog

    from cti.app import Daemon
    from cti.config import load_settings

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    s = load_settings(None, env={})
    s = s.replace("database", url=f"sqlite+aiosqlite:///{db_path}").replace("ami", enabled=False)
    s = s.replace("agi", port=0).replace("http", port=0, token_secret=SECRET)
    s = s.replace("greeting", sounds_dir=str(Path(db_path).parent / "sounds"))
    stalls = trace_stalls("server")
    d = Daemon(s)
    await d.start()

    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started: list[float] = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append((time.perf_counter() - started[0]) * 1000)
            if info["generation"] == 2 and os.environ.get("POP_BENCH_SLOW"):
                print(f"  server gen2 collection at {time.time():.2f}: "
                      f"{(time.perf_counter() - started[0]) * 1000:.1f} ms", file=sys.stderr)

    gc.callbacks.append(on_gc)
    loop = asyncio.get_running_loop()
    ident = {"server": "default", "linkedid": "", "caller_number": "13800138000", "caller_name": "",
             "caller_e164": "+8613800138000"}

    def ring(uniqueid: str, ifc: str, customer_id: int | None, at: float) -> None:
        d.bus.publish("call.ringing", {
            **ident, "uniqueid": uniqueid, "customer_id": customer_id, "queue": "appliances", "interface": ifc,
            "member_name": ifc, "priority": 5, "route": "product", "lang": "zh", "dialed": "4008001234",
            "at": at})

    async def inject(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for v in pauses.values():  # count the collections of the measured window only
            v.clear()
        window = time.time()
        stalls(window, arm=True)
        cpu0, rings = time.process_time(), 0
        prof = None
        if os.environ.get("POP_BENCH_PROFILE"):  # where the server's CPU goes while injecting (loop thread)
            import cProfile
            prof = cProfile.Profile()
            prof.enable()
        while line := await reader.readline():
            kind, uniqueid, *rest = line.decode().split()
            if kind == "Q":  # the FastAGI decision, then QueueCallerJoin, come before AgentCalled on a real PBX
                cid, at = rest
                d.bus.publish("agi.decision", {"server": "default", "uniqueid": uniqueid, "caller_number": "13800138000",
                                               "caller_e164": "+8613800138000",
                                               "customer_id": None if cid == "-" else int(cid), "queue": "appliances",
                                               "priority": 5, "action": "queue", "route": "product", "ivr_choice": None,
                                               "dialed": "4008001234", "lang": "zh", "at": float(at)})
                d.bus.publish("call.queued", {**ident, "uniqueid": uniqueid, "customer_id": None if cid == "-" else int(cid),
                                              "queue": "appliances", "position": 1, "count": 1, "priority": 5,
                                              "at": float(at)})
            elif kind == "R":
                ifc, cid, at = rest
                ring(uniqueid, ifc, None if cid == "-" else int(cid), float(at))
                rings += 1
            elif kind == "END":
                cpu_report(cpu0, rings)
                if prof is not None:
                    import io
                    import pstats
                    prof.disable()
                    out = io.StringIO()
                    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(30)
                    print(out.getvalue(), file=sys.stderr)
                gc.callbacks.remove(on_gc)
                stalls(window)
                print(f"  server heap at the end: {len(gc.get_objects())} tracked objects scanned by a full "
                      f"collection, {gc.get_freeze_count()} frozen", file=sys.stderr)

    srv = await asyncio.start_server(inject, "127.0.0.1", 0)
    print(json.dumps({"http": d.web.port, "inject": srv.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    print("  gc pauses (server, while events were injected): " + ", ".join(f"gen{g}: {len(v)} max {max(v, default=0):.1f} ms"
                                              for g, v in pauses.items()), file=sys.stderr)
    cache = getattr(d.web.hub, "cache", None)
    if cache is not None:
        print(f"  pop cache: {cache.loads} cards loaded in {getattr(cache, 'queries', '?')} queries, {cache.hits} rings "
              f"served from a prefetched card", file=sys.stderr)
    await d.stop()


def sample_pop() -> dict[str, Any]:
    from cti.web.crosssell import load_rules
    from cti.web.pops import build_pop

    today = date.today()
    customer = {"id": 1, "family_name": "王", "given_name": "客1", "title": "先生", "language": "zh", "vip": True,
                "dealer": None, "email": None, "phones": [{"e164": "+8613800130001"}],
                "products": [{"product_line": "appliances", "model": "微波炉 M1", "serial": None, "purchased_on": today},
                             {"product_line": "mobile", "model": "Phone 1", "serial": None, "purchased_on": date(2025, 1, 1)}],
                "open_tickets": [{"id": 1, "category": "complaint", "description": "不加热", "status": "open",
                                  "sla_deadline": datetime.now(timezone.utc) + timedelta(hours=8)}],
                "last_calls": [{"started_at": datetime.now(timezone.utc), "queue": "appliances", "outcome": "answered",
                                "disposition": "resolved", "notes": "客户来电咨询保修，已解答"}] * 3}
    ringing = {"server": "default", "uniqueid": "1.1", "linkedid": "", "caller_number": "13800138000", "caller_name": "",
               "caller_e164": "+8613800138000", "customer_id": 1, "queue": "appliances", "interface": "PJSIP/b00000",
               "priority": 5, "route": "product", "lang": "zh", "dialed": "4008001234", "at": 0.0}
    return build_pop(ringing, None, customer, load_rules(None), time.time(), today)


async def serve_bare() -> None:
    from aiohttp import web

    from cti.web.hub import dumps

    pop = sample_pop()
    socks: dict[str, web.WebSocketResponse] = {}
    stalls = trace_stalls("bare server")

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, heartbeat=30.0)
        await ws.prepare(request)
        key = request.headers.get("X-Interface", "")
        socks[key] = ws
        try:
            async for _ in ws:
                pass
        finally:
            socks.pop(key, None)
        return ws

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    # the same transport settings as cti (cti/web/server.py): heartbeats not rounded to whole seconds (with
    # aiohttp's default rounding, the consoles connected within a second ping together: p99 > 100 ms here)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, timeout_ceil_threshold=120.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def inject(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cpu0, rings, window = time.process_time(), 0, time.time()
        while line := await reader.readline():
            kind, uniqueid, *rest = line.decode().split()
            if kind == "END":
                cpu_report(cpu0, rings)
                stalls(window)
            if kind != "R":
                continue
            rings += 1
            ifc, _, at = rest
            ws = socks.get(ifc)
            if ws is not None:
                pop["call"]["ringing_at"] = float(at)
                pop["call"]["interface"] = ifc
                pop["call"]["uniqueid"] = uniqueid
                await ws.send_str(dumps(pop))

    srv = await asyncio.start_server(inject, "127.0.0.1", 0)
    print(json.dumps({"http": port, "inject": srv.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


# ---------------------------------------------------------------- clients (child process)
async def run_clients(port: int, clients: int, bare: bool, connect_rate: float) -> None:
    import aiohttp

    from cti.web.tokens import TokenSigner

    signer = TokenSigner(SECRET.encode(), 3600)
    stalls = trace_stalls("client")
    lat: list[float] = []
    events: list[tuple[float, float]] = []
    sem = asyncio.Semaphore(100)
    connected = 0
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    first: list[float] = []

    async def one(i: int) -> None:
        nonlocal connected
        headers = {"X-Interface": iface(i)}
        if not bare:
            headers["Authorization"] = "Bearer " + signer.issue(i + 1, f"b{i:05d}", "agent", time.time())[0]
        await asyncio.sleep(i / connect_rate)  # the same arrival pace for every contender
        async with sem:
            for attempt in range(5):
                try:
                    ws = await session.ws_connect(f"http://127.0.0.1:{port}/ws", headers=headers, heartbeat=None,
                                                  compress=0, autoping=True)
                    break
                except (aiohttp.ClientError, OSError):
                    await asyncio.sleep(0.2 * (attempt + 1))
            else:
                return
        connected += 1
        if not first:
            first.append(time.time())
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            now = time.time()
            if msg.data.startswith('{"type":"screen_pop"'):
                at = json.loads(msg.data)["call"]["ringing_at"]
                lat.append((now - at) * 1000)
                events.append((at, (now - at) * 1000))

    tasks = [asyncio.create_task(one(i)) for i in range(clients)]
    while connected < clients and not all(t.done() for t in tasks):
        await asyncio.sleep(0.2)
    # The measuring instrument must not pause: its heap (5,000 connections) leaves the collector's
    # scans and the collector is off while the frames are timed.
    gc.collect()
    gc.freeze()
    gc.disable()
    print(json.dumps({"connected": connected, "first_at": first[0] if first else time.time()}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "stop"
    if events and os.environ.get("POP_BENCH_SLOW"):
        t0 = min(a for a, _ in events)
        slow = sorted((a - t0, ms) for a, ms in events if ms > 5)
        print(f"  slow pops (s after {t0:.2f}, ms): " + " ".join(f"{t:.2f}:{ms:.0f}" for t, ms in slow), file=sys.stderr)
    stalls(min((a for a, _ in events), default=0.0))
    print(json.dumps({"latencies": lat}), flush=True)
    for t in tasks:
        t.cancel()
    await session.close()


# ---------------------------------------------------------------- orchestration
def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(HERE), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)


def read_json(p: subprocess.Popen[str]) -> dict[str, Any]:
    assert p.stdout is not None
    while True:
        line = p.stdout.readline()
        if not line:
            raise RuntimeError("child ended")
        if line.startswith("{"):
            return json.loads(line)


async def inject(port: int, clients: int, rate: float, seconds: float, customer_ids: list[int], lead: float) -> int:
    """Send the events at their due times, each stamped with its send time (the moment it "arrives")."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    rnd = random.Random(7)
    n = int(rate * seconds)
    order = list(range(clients))
    rnd.shuffle(order)  # every agent rung in turn: no phone rings twice at once
    timeline: list[tuple[float, int, str]] = []
    for k in range(n):
        cid = str(rnd.choice(customer_ids)) if customer_ids and rnd.random() < 0.8 else "-"
        uid = f"{k}.{rnd.randrange(1 << 30)}"
        if lead > 0:
            timeline.append((k / rate, 0, f"Q {uid} {cid}"))
        timeline.append((k / rate + lead, 1, f"R {uid} {iface(order[k % clients])} {cid}"))
    timeline.sort()
    start = time.perf_counter()
    for due, _, line in timeline:
        delay = start + due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        writer.write(f"{line} {time.time():.6f}\n".encode())
    writer.write(b"END x\n")
    await writer.drain()
    writer.close()
    return n


def contender(name: str, server_args: list[str], args: argparse.Namespace, customer_ids: list[int],
              lead: float) -> dict[str, Any]:
    server = spawn(*server_args)
    ports = read_json(server)
    time.sleep(1.0)
    rss0 = rss_kb(server.pid)
    client = spawn("clients", "--port", str(ports["http"]), "--clients", str(args.clients),
                   "--connect-rate", str(args.connect_rate), *(["--bare"] if name.startswith("bare") else []))
    t0 = time.time()
    ready = read_json(client)
    connected = ready["connected"]
    connect_s = time.time() - t0
    time.sleep(3.0)
    rss1 = rss_kb(server.pid)
    time.sleep(max(0.0, ready["first_at"] + args.settle - time.time()))
    sent = asyncio.run(inject(ports["inject"], args.clients, args.rate, args.seconds, customer_ids, lead))
    time.sleep(2.0)
    assert client.stdin is not None
    client.stdin.write("stop\n")
    client.stdin.flush()
    lat = sorted(read_json(client)["latencies"])
    client.stdin.close()
    client.wait(10)
    server.stdin.close()  # type: ignore[union-attr]
    server.wait(20)
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    return {"name": name, "connected": connected, "connect_s": connect_s, "sent": sent, "received": len(lat),
            "p50": q[49], "p99": q[98], "max": lat[-1] if lat else float("nan"),
            "kb_per_conn": (rss1 - rss0) / max(1, connected), "rss0_mb": rss0 / 1024, "rss1_mb": rss1 / 1024}


def main() -> None:
    raise_nofile()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode")
    p = sub.add_parser("serve-cti"); p.add_argument("--db", required=True)
    sub.add_parser("serve-bare")
    p = sub.add_parser("clients"); p.add_argument("--port", type=int, required=True)
    p.add_argument("--clients", type=int, required=True); p.add_argument("--bare", action="store_true")
    p.add_argument("--connect-rate", type=float, required=True)
    ap.add_argument("--clients", type=int, default=5000)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--customers", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=2, help="alternate the contenders this many times (a noisy box)")
    ap.add_argument("--only", default="bare,cti,cold", help="contenders to run, in order (bare first for ratios)")
    ap.add_argument("--connect-rate", type=float, default=250.0,
                    help="websocket connections opened per second (the same pace for every contender)")
    ap.add_argument("--settle", type=float, default=31.0,
                    help="inject no earlier than this many s after the first connection: the websocket "
                         "heartbeats (30 s) of the connected clients run during the measured window")
    ap.add_argument("--lead", type=float, default=1.0,
                    help="seconds between call.queued and call.ringing (the hub prefetches the card at queued)")
    args = ap.parse_args()
    if args.mode == "serve-cti":
        asyncio.run(serve_cti(args.db)); return
    if args.mode == "serve-bare":
        asyncio.run(serve_bare()); return
    if args.mode == "clients":
        asyncio.run(run_clients(args.port, args.clients, args.bare, args.connect_rate)); return

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        t = time.time()
        ids = asyncio.run(prepare_db(db, args.clients, args.customers))
        print(f"database: {args.clients} agents, {len(ids)} customers ({time.time() - t:.1f} s)", file=sys.stderr)
        plan: dict[str, tuple[str, list[str], float]] = {
            "bare": ("bare aiohttp", ["serve-bare"], args.lead),
            "cti": ("cti hub", ["serve-cti", "--db", str(db)], args.lead),
            "cold": ("cti hub, cold", ["serve-cti", "--db", str(db)], 0.0)}
        runs = [contender(plan[k][0], plan[k][1], args, ids, plan[k][2])
                for _ in range(args.rounds) for k in args.only.split(",")]
    for r in runs:  # every round, then the median of the rounds per contender
        print(f"  round: {r['name']:16} p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms  max {r['max']:.2f} ms  "
              f"{r['kb_per_conn']:.1f} KB/conn  {r['received']}/{r['sent']}  connected in {r['connect_s']:.1f} s",
              file=sys.stderr)
    results = []
    for k in args.only.split(","):
        mine = [r for r in runs if r["name"] == plan[k][0]]
        med = {key: statistics.median(r[key] for r in mine) for key in ("p50", "p99", "max", "kb_per_conn", "rss0_mb",
                                                                        "rss1_mb", "connect_s")}
        results.append({**mine[0], **med, "received": sum(r["received"] for r in mine),
                        "sent": sum(r["sent"] for r in mine), "connected": min(r["connected"] for r in mine)})
    print(f"\n{args.clients} websocket clients, {args.rate:.0f} call.ringing/s for {args.seconds:.0f} s "
          f"(one pop per event, to one agent; 80 % known customers). 'cti hub': call.queued {args.lead:g} s before "
          f"the ring, as on a PBX; 'cold': the ring alone, card loaded from the database on the ring")
    print(f"medians of {args.rounds} alternating round(s); load average at the end {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs (other processes share the box):")
    print(f"{'':16} {'conn':>6} {'recv/sent':>11} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'KB/idle conn':>13} "
          f"{'RSS MB before/after':>20}")
    for r in results:
        print(f"{r['name']:16} {r['connected']:>6} {r['received']:>5}/{r['sent']:<5} {r['p50']:8.2f} {r['p99']:8.2f} "
              f"{r['max']:8.2f} {r['kb_per_conn']:13.1f} {r['rss0_mb']:9.1f}/{r['rss1_mb']:<9.1f}")
    if len(results) < 2:
        return
    b = next((r for r in results if r["name"] == plan["bare"][0]), results[0])
    c = next((r for r in results if r["name"] == plan["cti"][0]), results[1])
    print(f"ratio cti/bare: p50 x{c['p50'] / b['p50']:.2f}, p99 x{c['p99'] / b['p99']:.2f}, "
          f"memory/conn x{c['kb_per_conn'] / max(0.1, b['kb_per_conn']):.2f}")
    print(f"targets: p99 <= 5 ms: {'met' if c['p99'] <= 5 else 'NOT met'}; <= 30 KB/idle connection: "
          f"{'met' if c['kb_per_conn'] <= 30 else 'NOT met'}")


if __name__ == "__main__":
    main()
