"""Issue 17's "done when": the web side under abuse does not hurt FastAGI or a legitimate login.

A real ``cti serve`` (SQLite, AMI off) runs with the usual ``RLIMIT_NOFILE`` of 1,024 (``--nofile``),
one agent account. Two phases, in the same run:

* ``quiet``: ``--calls`` FastAGI calls (``--concurrency`` at a time, the simulated Asterisk of
  cti/agi/peer.py, unknown caller: lookup + routing + decision) and ``--logins`` legitimate logins
  one after another;
* ``abuse``: the same, while an abuser process (its own CPU) holds ``--idle`` idle and ``--slow``
  slow-header connections to the web port (one header line every 2 s, reconnecting when cut) and
  keeps ``--storm`` wrong-password logins in flight for random usernames from 127.0.0.2 (another
  source address on loopback; the legitimate logins come from 127.0.0.1).

Printed per phase: FastAGI latency (connect to the server's close, as Asterisk waits) p50/p99/max,
calls that failed, legitimate login time median/max, and what the abuser got (connections open,
refused, logins answered by status). Targets: FastAGI p99 < 5 ms, legitimate login < 1 s.

    .venv/bin/python bench/web_abuse_bench.py [--idle 1000 --slow 1000 --storm 150 --calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
PASSWORD = "bench-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard))


# -- the abuser (a child process: its CPU is not the measuring loop's) ---------------------------
async def abuse(port: int, idle: int, slow: int, storm: int, seconds: float) -> dict[str, Any]:
    import aiohttp

    stats: dict[str, Any] = {"opened": 0, "cut": 0, "connect_failed": 0, "logins": {}}
    stop = time.monotonic() + seconds
    holders: list[Any] = []

    async def hold(drip: bool) -> None:
        while time.monotonic() < stop:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
            except (OSError, asyncio.TimeoutError):
                stats["connect_failed"] += 1
                await asyncio.sleep(0.5)
                continue
            stats["opened"] += 1
            try:
                if drip:
                    w.write(b"GET /api/me HTTP/1.1\r\nHost: x\r\n")
                while time.monotonic() < stop:
                    if drip:
                        w.write(b"X-Slow: 1\r\n")
                        await w.drain()
                    try:
                        if await asyncio.wait_for(r.read(1024), 2.0) == b"":
                            break  # the server cut it
                    except asyncio.TimeoutError:
                        pass
            except (OSError, ConnectionError):
                pass
            stats["cut"] += 1
            w.close()
            await asyncio.sleep(0.2)

    async def login_storm() -> None:
        conn = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0), limit=0)
        async with aiohttp.ClientSession(connector=conn) as s:
            async def one() -> None:
                while time.monotonic() < stop:
                    try:
                        async with s.post(f"http://127.0.0.1:{port}/api/login",
                                          json={"username": f"u{random.randrange(10**9)}", "password": "wrong-pass"},
                                          timeout=aiohttp.ClientTimeout(total=60)) as r:
                            stats["logins"][r.status] = stats["logins"].get(r.status, 0) + 1
                            if r.status == 429:
                                await asyncio.sleep(0.2)
                    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                        stats["logins"]["error"] = stats["logins"].get("error", 0) + 1
                        await asyncio.sleep(0.2)
            await asyncio.gather(*(one() for _ in range(storm)))

    for i in range(idle + slow):
        holders.append(asyncio.create_task(hold(drip=i >= idle)))
        if i % 200 == 199:
            await asyncio.sleep(0.05)
    await asyncio.gather(login_storm(), *holders)
    return stats


# -- the measuring side -----------------------------------------------------------------------
async def fastagi(port: int, calls: int, concurrency: int) -> tuple[list[float], int]:
    from cti.agi.peer import asterisk_env, run_agi_call

    lat: list[float] = []
    failed = 0
    todo = iter(range(calls))

    async def worker() -> None:
        nonlocal failed
        for i in todo:
            env = asterisk_env(uniqueid=f"{1800000000 + i}.{random.randrange(10**6)}", callerid="13900000000",
                               calleridname="Bench", port=port)
            t0 = time.perf_counter()
            out = await run_agi_call("127.0.0.1", port, env, timeout=5.0)
            dt = time.perf_counter() - t0
            if out.error or not out.variables.get("CTI_QUEUE"):
                failed += 1
            else:
                lat.append(dt * 1000)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return lat, failed


async def logins(port: int, n: int) -> list[float]:
    import aiohttp

    out = []
    async with aiohttp.ClientSession() as s:
        for _ in range(n):
            t0 = time.perf_counter()
            try:
                async with s.post(f"http://127.0.0.1:{port}/api/login", json={"username": "alice", "password": PASSWORD},
                                  timeout=aiohttp.ClientTimeout(total=120)) as r:
                    await r.read()
                    ok = r.status == 200
            except (aiohttp.ClientError, asyncio.TimeoutError):
                ok = False
            out.append((time.perf_counter() - t0) * 1000 if ok else float("inf"))
            await asyncio.sleep(0.5)
    return out


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def phase(name: str, args: argparse.Namespace, agi_port: int, http_port: int) -> None:
    abuser = None
    if name == "abuse":
        abuser = await asyncio.create_subprocess_exec(
            sys.executable, str(HERE), "--role", "abuser", "--port", str(http_port), "--idle", str(args.idle),
            "--slow", str(args.slow), "--storm", str(args.storm), "--seconds", str(args.abuse_seconds),
            stdout=asyncio.subprocess.PIPE)
        await asyncio.sleep(args.warmup)  # connections opened, the storm running
    (lat, failed), login_ms = await asyncio.gather(fastagi(agi_port, args.calls, args.concurrency),
                                                   logins(http_port, args.logins))
    line = (f"{name:6s} FastAGI {len(lat)} calls p50 {pct(lat, 50):.2f} ms p99 {pct(lat, 99):.2f} ms "
            f"max {max(lat, default=float('nan')):.1f} ms failed {failed}; legitimate login median "
            f"{statistics.median(login_ms):.0f} ms max {max(login_ms):.0f} ms ({len(login_ms)})")
    print(line, flush=True)
    if abuser is not None:
        out, _ = await abuser.communicate()
        print(f"       abuser: {out.decode().strip()}", flush=True)


async def main(args: argparse.Namespace) -> None:
    raise_nofile()
    tmp = Path(tempfile.mkdtemp(prefix="cti-abuse-"))
    db = f"sqlite+aiosqlite:///{tmp / 'cti.db'}"
    agi_port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTI_")}
    env.update({"CTI_DATABASE_URL": db, "CTI_AMI_ENABLED": "false", "CTI_AGI_PORT": str(agi_port),
                "CTI_HTTP_PORT": str(http_port), "CTI_GREETING_SOUNDS_DIR": str(tmp / "sounds"),
                "CTI_LOG_FORMAT": "json", "CTI_LOG_LEVEL": "warning"})
    nofile = args.nofile

    def limit() -> None:  # the usual soft limit; the hard one stays (cti raises the soft one at start)
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard if args.raise_allowed else nofile))

    log = (tmp / "daemon.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-c", "from cti.cli import main; main()", "serve"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit)
    try:
        import aiohttp

        for _ in range(300):
            try:
                async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{http_port}/api/me") as r:
                    if r.status == 401:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.2)
        from cti.agents.accounts import add_agent
        from cti.agents.passwords import hash_password
        from cti.db.engine import create_engine, sessionmaker

        engine = create_engine(db)
        async with sessionmaker(engine)() as session, session.begin():
            await add_agent(await session.connection(), "alice", hash_password(PASSWORD))
        await engine.dispose()
        print(f"cti serve pid {proc.pid}, RLIMIT_NOFILE soft {nofile} at exec "
              f"({'hard limit left: cti raises it' if args.raise_allowed else 'hard limit too'}); {args.idle} idle + {args.slow} slow-header "
              f"connections, {args.storm} wrong logins in flight from 127.0.0.2; {args.calls} FastAGI calls "
              f"({args.concurrency} at a time) and {args.logins} legitimate logins per phase", flush=True)
        for name in ("quiet", "abuse"):
            await phase(name, args, agi_port, http_port)
        print(f"daemon log: {tmp / 'daemon.log'} (refusals: "
              f"{(tmp / 'daemon.log').read_text(errors='replace').count('web.connection_refused')} log lines)")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", default="bench", choices=("bench", "abuser"))
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--slow", type=int, default=1000)
    ap.add_argument("--storm", type=int, default=150)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--logins", type=int, default=10)
    ap.add_argument("--nofile", type=int, default=1024, help="the daemon's soft RLIMIT_NOFILE at exec")
    ap.add_argument("--no-raise", dest="raise_allowed", action="store_false",
                    help="hard limit = --nofile too: cti cannot raise it (the web side is capped to fit)")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--abuse-seconds", type=float, default=40.0)
    ap.add_argument("--seconds", type=float, default=40.0)
    a = ap.parse_args()
    if a.role == "abuser":
        raise_nofile()
        print(json.dumps(asyncio.run(abuse(a.port, a.idle, a.slow, a.storm, a.seconds)), default=str))
    else:
        asyncio.run(main(a))
