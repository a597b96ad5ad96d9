"""FastAGI load benchmark: the full ``incoming`` path against a bare asyncio baseline, same run.

    python bench/agi_bench.py                      # 1,000,000 customers (built once, cached in /tmp)
    python bench/agi_bench.py --customers 100000 --calls 2000 --rate 500 --rounds 3

Each server runs in its own process; the load generator (cti.agi.peer, answering like
Asterisk 22: the captured environment block, ``200 result=1`` replies) runs here and places
calls at a fixed rate, 90 % known callers. Printed per server: CPU microseconds per call in the
server process (process_time delta / calls) and p50/p99 call latency (connect to close), then
the ratios. Servers: ``bare`` (asyncio baseline, dict lookup), ``path`` (the FastAGI incoming path:
AgiServer, one indexed lookup among N customers, routing, greeting, decision on the bus) and ``full``
(the whole daemon, whose other parts react to every decision). Targets (issue 3, for ``path``):
ratio <= 1.5, p99 < 5 ms at 500 calls/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

VARS = ("CTI_QUEUE", "CTI_PRIORITY", "CTI_GREETING", "CTI_CUSTOMER_ID", "CTI_LANG", "CTI_ACTION", "CTI_ROUTE")


# --------------------------------------------------------------------------- servers
async def _serve_bare(port: int, customers: int) -> None:
    """Baseline: the same dialogue (read env, 7 SET VARIABLE with replies, close), dict lookup."""
    table = {f"138{i:08d}": (str(i + 1), "mobile") for i in range(customers)}

    class Session(asyncio.Protocol):
        def connection_made(self, transport):  # noqa: ANN001
            self.t = transport
            self.buf = b""
            self.pending: list[bytes] = []

        def data_received(self, data: bytes) -> None:
            self.buf += data
            if not self.pending and b"\n\n" in self.buf and not hasattr(self, "started"):
                self.started = True
                env = {}
                for line in self.buf.split(b"\n\n", 1)[0].decode("utf-8", "replace").split("\n"):
                    k, _, v = line.partition(": ")
                    env.setdefault(k, v)
                self.buf = b""
                cid, queue = table.get(env.get("agi_callerid", ""), ("", "appliances"))
                values = (queue, "0", "cti/greet-generic-zh", cid, "zh", "queue", "product")
                self.pending = [f'SET VARIABLE {n} "{v}"\n'.encode() for n, v in zip(VARS, values)]
                self.t.write(self.pending.pop(0))
            elif hasattr(self, "started") and b"\n" in self.buf:
                self.buf = b""
                if self.pending:
                    self.t.write(self.pending.pop(0))
                else:
                    self.t.close()

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Session, "127.0.0.1", port, backlog=1024)
    await _control(server, server.sockets[0].getsockname()[1])


async def _serve_full(port: int, db: str) -> None:
    from cti.app import Daemon
    from cti.config import load_settings
    from cti.logs import configure_logging

    configure_logging(os.environ.get("BENCH_LOG", "warning"), "json")
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1)  # kill -USR1 <pid>: where is every thread?
    s = load_settings(None, env={})
    s = s.replace("database", url=f"sqlite+aiosqlite:///{db}")
    s = s.replace("ami", enabled=False)
    s = s.replace("agi", port=port)
    s = s.replace("http", port=0)
    s = s.replace("routing", hours={str(d): "00:00-23:59" for d in range(7)})
    s = s.replace("greeting", sounds_dir="/tmp/cti-bench-sounds")
    daemon = Daemon(s)
    # No synthesis load in the bench: no backlog sweep (it would give a million imported customers
    # their greetings in the background) and no requests from calls.
    from cti.greeting.service import GreetingService

    daemon.greetings = GreetingService(s.greeting, daemon.sessionmaker, sweep_interval=None)
    daemon.greetings.request = lambda *a, **k: True  # type: ignore[method-assign]
    await daemon.start()
    await _control(None, daemon.agi.port)
    await daemon.stop()


async def _serve_path(port: int, db: str) -> None:
    """The FastAGI incoming path alone: AgiServer + hot-path lookup (1M customers) + routing +
    greeting choice + decision published on the bus; none of the daemon's other consumers."""
    from cti.agi.server import AgiServer
    from cti.bus import InMemoryBus
    from cti.config import RoutingConfig
    from cti.customers.lookup import open_lookup
    from cti.logs import configure_logging
    from cti.routing.inbound import InboundRoutes
    from cti.routing.rules import RoutingRules

    configure_logging("warning", "json")
    bus = InMemoryBus()
    sub = bus.subscribe("agi.decision", maxsize=100_000)  # a subscriber, as the call tracker has
    lookup = await open_lookup(f"sqlite+aiosqlite:///{db}")
    rules = RoutingRules.from_config(RoutingConfig(hours={str(d): "00:00-23:59" for d in range(7)}))
    routes = InboundRoutes(lookup, rules, region="CN", sound_prefix="cti",
                           on_decision=lambda d: bus.publish("agi.decision", {"uniqueid": d.uniqueid}))
    server = AgiServer(routes.routes(), routes.fallback, deadline_s=0.3, read_timeout_s=5)
    await server.start("127.0.0.1", port)

    async def drain() -> None:
        async for _ in sub:
            pass

    task = asyncio.create_task(drain())
    from cti.heap import freeze_startup_heap

    freeze_startup_heap()  # as the daemon does once started (cti/app.py)
    await _control(None, server.port)
    task.cancel()
    await server.close()
    await lookup.close()


async def _control(server, port: int) -> None:  # noqa: ANN001
    """Tell the parent our port; answer 'cpu' with our process time; stop on EOF."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", port, flush=True)
    while line := await reader.readline():
        if line.strip() == b"cpu":
            print(time.process_time(), flush=True)
    if server is not None:
        server.close()


# --------------------------------------------------------------------------- load
class Server:
    def __init__(self, kind: str, port: int, args: argparse.Namespace, db: str) -> None:
        if kind == "full":  # calls recorded by an earlier run (no AMI here to close them) would be restored
            import sqlite3

            with sqlite3.connect(db) as conn:
                conn.execute("DELETE FROM calls")
        cmd = [sys.executable, __file__, "--_server", kind, "--_port", str(port), "--_db", db,
               "--customers", str(args.customers)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if args.pin:
            os.sched_setaffinity(self.proc.pid, {1})  # every server on the same core, the load on the other
        line = self.proc.stdout.readline().split()
        assert line[:1] == ["ready"], f"{kind} server did not start"
        self.port = int(line[1])

    def cpu(self) -> float:
        self.proc.stdin.write("cpu\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


class _Caller(asyncio.Protocol):
    """A lean Asterisk side: writes the environment block, answers every command line with
    ``200 result=1`` (what Asterisk answers to SET VARIABLE), counts the commands, ends on close."""

    def __init__(self, block: bytes, done: asyncio.Future) -> None:
        self.block, self.done, self.commands, self.buf = block, done, 0, b""

    def connection_made(self, transport) -> None:  # noqa: ANN001
        self.t = transport
        cut = self.block.find(b"\nagi_extension: ") + 1  # two chunks, like Asterisk
        transport.write(self.block[:cut])
        transport.write(self.block[cut:])

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\n" in self.buf:
            _, self.buf = self.buf.split(b"\n", 1)
            self.commands += 1
            self.t.write(b"200 result=1\n")

    def connection_lost(self, exc) -> None:  # noqa: ANN001
        if not self.done.done():
            self.done.set_result(self.commands)


async def load(port: int, calls: int, rate: float, customers: int, seed: int) -> list[float]:
    from cti.agi.peer import asterisk_env, environment_block

    rnd = random.Random(seed)
    loop = asyncio.get_running_loop()
    latencies: list[float] = []

    async def one(i: int) -> None:
        known = rnd.random() < 0.9
        number = f"138{rnd.randrange(customers):08d}" if known else f"139{rnd.randrange(10**8):08d}"
        block = environment_block(asterisk_env(uniqueid=f"1795372412.{i}", callerid=number,
                                               calleridname="Wang Wei", port=port))
        t0 = time.perf_counter()
        done = loop.create_future()
        await loop.create_connection(lambda: _Caller(block, done), "127.0.0.1", port)
        commands = await done
        latencies.append(time.perf_counter() - t0)
        assert commands == 7, commands

    start = loop.time()
    tasks = []
    for i in range(calls):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return latencies


def measure(server: Server, args: argparse.Namespace, seed: int) -> tuple[float, float, float]:
    asyncio.run(load(server.port, min(300, args.calls), args.rate, args.customers, seed))  # warm-up
    c0 = server.cpu()
    lat = asyncio.run(load(server.port, args.calls, args.rate, args.customers, seed + 1))
    c1 = server.cpu()
    lat.sort()
    return (c1 - c0) / args.calls * 1e6, lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3


def build_db(path: Path, customers: int) -> None:
    if path.exists():  # built by an earlier run, perhaps of an older cti: bring its schema up to date
        from cti.db.engine import create_engine
        from cti.db.migrations import upgrade

        async def _upgrade() -> None:
            engine = create_engine(f"sqlite+aiosqlite:///{path}")
            await upgrade(engine)
            await engine.dispose()

        asyncio.run(_upgrade())
        return
    from make_customers import rows

    from cti.customers.importer import import_customers
    from cti.db.engine import create_engine
    from cti.db.schema import init_schema

    csv_path = path.with_suffix(".csv")
    with csv_path.open("w", encoding="utf-8") as fh:
        fh.write("phones,family_name,given_name,title,language,vip,dealer,email,products\n")
        fh.writelines(rows(customers))
    tmp = path.with_suffix(".tmp.db")

    async def _build() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp}")
        await init_schema(engine)
        t0 = time.perf_counter()
        report = await import_customers(engine, csv_path, "CN")
        print(f"imported {report.created} customers in {time.perf_counter() - t0:.1f} s", flush=True)
        await engine.dispose()

    asyncio.run(_build())
    tmp.rename(path)
    csv_path.unlink()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--servers", default="bare,path,full", help="which servers to measure (comma-separated)")
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="do not pin the load generator to CPU 0 and the servers to CPU 1 (pinned when there are 2+ CPUs)")
    p.add_argument("--db", default=None, help="SQLite file (default /tmp/cti-bench-<N>.db, built once)")
    p.add_argument("--_server", help=argparse.SUPPRESS)
    p.add_argument("--_port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--_db", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._server == "bare":
        asyncio.run(_serve_bare(args._port, args.customers))
        return
    if args._server == "path":
        if os.environ.get("AGI_BENCH_PROFILE"):
            import cProfile

            cProfile.runctx("asyncio.run(_serve_path(args._port, args._db))", globals(), locals(),
                            os.environ["AGI_BENCH_PROFILE"])
        else:
            asyncio.run(_serve_path(args._port, args._db))
        return
    if args._server == "full":
        if os.environ.get("AGI_BENCH_PROFILE"):  # AGI_BENCH_PROFILE=out.prof: cProfile of the full server
            import cProfile

            cProfile.runctx("asyncio.run(_serve_full(args._port, args._db))", globals(), locals(),
                            os.environ["AGI_BENCH_PROFILE"])
        else:
            asyncio.run(_serve_full(args._port, args._db))
        return

    args.pin = args.pin and hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1
    if args.pin:  # like Asterisk on its own machine: the load does not share the server's core and caches
        os.sched_setaffinity(0, {0})
    db = Path(args.db or f"/tmp/cti-bench-{args.customers}.db")
    build_db(db, args.customers)
    kinds = tuple(k for k in ("bare", "path", "full") if k in args.servers.split(","))
    results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in kinds}
    for r in range(args.rounds):
        for kind, port in ((k, 0) for k in kinds):
            server = Server(kind, port, args, str(db))
            try:
                results[kind].append(measure(server, args, seed=r * 10))
            finally:
                server.stop()
    print(f"customers={args.customers} calls/round={args.calls} rate={args.rate:.0f}/s rounds={args.rounds} (medians)")
    med = {}
    for kind in kinds:
        cpu = statistics.median(x[0] for x in results[kind])
        p50 = statistics.median(x[1] for x in results[kind])
        p99 = statistics.median(x[2] for x in results[kind])
        med[kind] = cpu
        print(f"  {kind:<5} server CPU {cpu:7.1f} us/call   latency p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    if "bare" in med and "path" in med:
        print(f"  ratio path/bare CPU: {med['path'] / med['bare']:.2f}  (target <= 1.5: the FastAGI incoming path)")
    if "bare" in med and "full" in med:
        print(f"  ratio full/bare CPU: {med['full'] / med['bare']:.2f}  (the whole daemon: + call records, pop prefetch, greetings, web)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
