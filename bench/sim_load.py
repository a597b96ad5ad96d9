"""FastAGI load through the simulated Asterisk (``cti sim``'s engine): calls placed in bulk, AGI latency seen
from the PBX side, with a same-run baseline.

    # against a daemon you run yourself (cti serve, cti demo: its FastAGI port is printed)
    python bench/sim_load.py --agi-port 4573 --calls 2000 --rate 200 --callers-file cti-demo/callers.csv

    # self-contained: spawns `cti serve` (AMI off, SQLite with the demo customers) and a bare FastAGI
    # baseline (cti.sim.testing.ScriptedAgiServer) in their own processes, alternating rounds
    python bench/sim_load.py --spawn --calls 2000 --rate 200 --rounds 3

Each call is a whole simulated call (``SimPbx.place_call``): the Asterisk-exact environment block,
the server's commands executed and answered like Asterisk 22, the IVR second AGI for unknown callers.
The latency of one AGI session is measured in the PBX process from the dialplan's ``AGI`` step
(``Newexten``) to the ``AGISTATUS`` it sets after the server closed: connect, environment,
commands, close. Printed per round: calls, failures, p50/p90/p99/max per script; with ``--spawn``
the ratio cti/baseline of the p50 and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cti.sim.config import SimConfig  # noqa: E402
from cti.sim.pbx import SimPbx  # noqa: E402
from cti.sim.traffic import CallerPool, load_callers  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(p / 100 * (len(ordered) - 1)))))
    return ordered[k]


class AgiTimer:
    """An AMI-event listener of the SimPbx: AGI step start -> AGISTATUS, per uniqueid, in real time."""

    def __init__(self) -> None:
        self.open: dict[str, tuple[float, str]] = {}
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, int] = defaultdict(int)

    def __call__(self, headers: list[tuple[str, object]]) -> None:
        now = time.perf_counter()
        d = dict(headers)
        event = d.get("Event")
        if event == "Newexten" and d.get("Application") == "AGI":
            data = d.get("AppData", b"")
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            script = text.split("/")[-1].split(",")[0]
            self.open[str(d.get("Uniqueid"))] = (now, script)
        elif event == "VarSet" and d.get("Variable") == "AGISTATUS":
            started = self.open.pop(str(d.get("Uniqueid")), None)
            value = d.get("Value", b"")
            status = value.decode() if isinstance(value, bytes) else str(value)
            self.status[status] += 1
            if started is not None and status == "SUCCESS":
                self.latency[started[1]].append((now - started[0]) * 1000.0)


async def drive(agi_host: str, agi_port: int, calls: int, rate: float, known: list[tuple[str, str]],
                unknown_share: float, seed: int) -> AgiTimer:
    """Place ``calls`` calls at ``rate`` per second (Poisson), wait until every call has finished.

    The clock runs x100: a caller waits 30 simulated seconds (0.3 s) for the FastAGI server (longer
    counts as ``HANGUP``, Asterisk having no AGI timeout) and as long in a queue with no agent."""
    config = SimConfig(ami_port=0, agi_host=agi_host, agi_port=agi_port, speed=100.0, seed=seed, agents=(),
                       greeting_seconds=0.0, ivr_seconds=0.0, answer_seconds=0.0, patience_mean=1.0)
    rng = random.Random(seed)
    pool = CallerPool(known, random.Random(rng.random()), unknown_share)
    timer = AgiTimer()
    async with SimPbx(config) as pbx:
        pbx.listeners.append(timer)
        handles = []
        next_at = time.perf_counter()
        for _ in range(calls):
            next_at += rng.expovariate(rate)
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            caller = pool.pick()
            handles.append(pbx.place_call(caller.number, caller.name, patience=30.0, ivr_digit=rng.choice("123")))
        await asyncio.gather(*(h.wait("finished", 60) for h in handles))
    return timer


def report(label: str, timer: AgiTimer) -> dict[str, tuple[float, float]]:
    out = {}
    failures = {k: v for k, v in timer.status.items() if k != "SUCCESS"}
    print(f"  {label:<9} sessions {sum(timer.status.values()):>6}  not SUCCESS {failures or 0}")
    for script, values in sorted(timer.latency.items()):
        p50, p90, p99 = (percentile(values, p) for p in (50, 90, 99))
        print(f"    {script:<9} n={len(values):<6} p50 {p50:6.2f} ms  p90 {p90:6.2f} ms  p99 {p99:6.2f} ms  "
              f"max {max(values):6.2f} ms  mean {statistics.fmean(values):6.2f} ms")
        out[script] = (p50, p99)
    return out


# --------------------------------------------------------------------------- spawned servers
BASELINE = """
import asyncio, sys
from cti.sim.testing import ScriptedAgiServer
VARS = {"CTI_QUEUE": "mobile", "CTI_PRIORITY": "0", "CTI_GREETING": "cti/greet-generic-zh",
        "CTI_CUSTOMER_ID": "", "CTI_LANG": "zh", "CTI_ACTION": "queue"}
async def main():
    server = ScriptedAgiServer(lambda env: VARS)
    await asyncio.start_server(server._serve, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


async def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise SystemExit(f"nothing listens on {port} after {timeout} s")


async def seed_demo_db(path: Path) -> list[tuple[str, str]]:
    """A SQLite database with the demo customers; returns them as known callers."""
    from cti.db.engine import create_engine
    from cti.db.schema import init_schema
    from cti.demo.data import demo_customers, roster
    from cti.demo.seed import seed_world

    from cti.config import load_settings
    from cti.greeting.batch import synthesize_backlog

    people = demo_customers(100)
    url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url)
    try:
        await init_schema(engine)
        await seed_world(engine, people, replace(roster(0), agents=()))
    finally:
        await engine.dispose()
    # greetings built before the run (steady state): the daemon's sweeper must not synthesize during it
    settings = load_settings(None, env={}).replace("database", url=url)
    built = await synthesize_backlog(settings.replace("greeting", sounds_dir=str(path.parent / "sounds")))
    print(f"{len(people)} customers, {built} greetings synthesized before the run")
    return [(p.caller_number, p.caller_name) for p in people]


def spawn_cti(db: Path, sounds: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "CTI_DATABASE_URL": f"sqlite+aiosqlite:///{db}", "CTI_AGI_PORT": str(port),
           "CTI_AMI_ENABLED": "false", "CTI_HTTP_PORT": "0", "CTI_GREETING_SOUNDS_DIR": str(sounds),
           "CTI_LOG_LEVEL": "warning", "CTI_ROUTING_HOURS": '{"0": "00:00-23:59", "1": "00:00-23:59", '
           '"2": "00:00-23:59", "3": "00:00-23:59", "4": "00:00-23:59", "5": "00:00-23:59", "6": "00:00-23:59"}'}
    env.pop("CTI_CONFIG", None)
    return subprocess.Popen([sys.executable, "-c", "import sys; from cti.cli import main; sys.exit(main())", "serve"],
                            env=env, stdout=subprocess.DEVNULL)


def spawn_baseline(port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", BASELINE, str(port)], stdout=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


async def spawned(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="cti-simload-") as tmp:
        db = Path(tmp) / "cti.db"
        known = await seed_demo_db(db)
        cti_port, base_port = free_port(), free_port()
        procs = {"cti": spawn_cti(db, Path(tmp) / "sounds", cti_port), "baseline": spawn_baseline(base_port)}
        ports = {"cti": cti_port, "baseline": base_port}
        try:
            for name, proc in procs.items():
                await _wait_port(ports[name], proc)
            await drive("127.0.0.1", cti_port, min(200, args.calls), args.rate, known, args.unknown_share, 0)  # warm-up
            results: dict[str, list[dict[str, tuple[float, float]]]] = defaultdict(list)
            for r in range(args.rounds):
                for name in (("baseline", "cti") if r % 2 == 0 else ("cti", "baseline")):
                    print(f"round {r + 1} {name}: {args.calls} calls at {args.rate:g}/s")
                    timer = await drive("127.0.0.1", ports[name], args.calls, args.rate, known,
                                        args.unknown_share, args.seed + r)
                    results[name].append(report(name, timer))
            print("median over rounds, cti / baseline:")
            for script in sorted(results["cti"][0]):
                c50 = statistics.median(x[script][0] for x in results["cti"] if script in x)
                c99 = statistics.median(x[script][1] for x in results["cti"] if script in x)
                b = [x[script] for x in results["baseline"] if script in x] or \
                    [x["incoming"] for x in results["baseline"]]
                b50, b99 = statistics.median(v[0] for v in b), statistics.median(v[1] for v in b)
                print(f"  {script:<9} p50 {c50:.2f} / {b50:.2f} ms = {c50 / b50:.2f}x   "
                      f"p99 {c99:.2f} / {b99:.2f} ms = {c99 / b99:.2f}x")
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(10)


async def external(args: argparse.Namespace) -> None:
    known = load_callers(args.callers_file) if args.callers_file else []
    print(f"{args.calls} calls at {args.rate:g}/s to FastAGI {args.agi_host}:{args.agi_port}, "
          f"{len(known)} known callers, unknown share {args.unknown_share if known else 1.0:g}")
    report("cti", await drive(args.agi_host, args.agi_port, args.calls, args.rate, known, args.unknown_share, args.seed))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agi-host", default="127.0.0.1")
    p.add_argument("--agi-port", type=int, default=4573)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--rate", type=float, default=50.0, help="calls per second (Poisson)")
    p.add_argument("--callers-file", help="known callers, number,name (e.g. cti-demo/callers.csv)")
    p.add_argument("--unknown-share", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--spawn", action="store_true", help="spawn cti serve and a bare FastAGI baseline")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    from cti.logs import configure_logging

    configure_logging("warning")
    asyncio.run(spawned(args) if args.spawn else external(args))


if __name__ == "__main__":
    main()
