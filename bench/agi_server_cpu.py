"""Server CPU per FastAGI call: cti's AgiServer vs bare asyncio dialogues, same run.

Each server runs in its own process; the client (cti.agi.peer.run_agi_call, answering like
Asterisk 22) plays sequential calls that set 5 variables.  The figure is the server process's
``time.process_time()`` per call, measured in alternating rounds; the report gives median and
best round per server and the ratios.  Baselines: ``bare-streams`` (asyncio.start_server,
readuntil + readline) and ``bare-protocol`` (asyncio.Protocol, one task per call, like cti).

    python bench/agi_server_cpu.py [calls_per_round=1000] [rounds=10]
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import sys
import time

VARS = {"CTI_QUEUE": "mobile", "CTI_PRIORITY": "5", "CTI_GREETING": "hello", "CTI_CUSTOMER_ID": "C0001234", "CTI_LANG": "zh"}
CMDS = [f'SET VARIABLE {k} "{v}"\n'.encode() for k, v in VARS.items()]
MODES = ("bare-streams", "bare-protocol", "cti")


async def _listen(mode: str) -> int:
    loop = asyncio.get_running_loop()
    if mode == "cti":
        from cti.agi.server import AgiServer

        async def incoming(env: object) -> dict[str, str]:
            return VARS

        srv = AgiServer({"incoming": incoming}, lambda env: {}, deadline_s=1.0, read_timeout_s=5.0)
        await srv.start("127.0.0.1", 0)
        return srv.port
    if mode == "bare-streams":

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\n\n")
            for c in CMDS:
                writer.write(c)
                await reader.readline()
            writer.close()

        s = await asyncio.start_server(handle, "127.0.0.1", 0)
        return s.sockets[0].getsockname()[1]

    class Bare(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t = transport
            self.buf = b""
            self.env = False
            self.fut: asyncio.Future[bytes] | None = None

        def data_received(self, data: bytes) -> None:
            if not self.env:
                self.buf += data
                if b"\n\n" in self.buf:
                    self.env = True
                    loop.create_task(self.run())
                return
            if self.fut is not None and not self.fut.done():
                self.fut.set_result(data)

        async def run(self) -> None:
            for c in CMDS:
                self.fut = loop.create_future()
                self.t.write(c)  # type: ignore[attr-defined]
                await self.fut
            self.t.close()

    s = await loop.create_server(Bare, "127.0.0.1", 0)
    return s.sockets[0].getsockname()[1]


async def _serve(mode: str, conn) -> None:  # noqa: ANN001 - multiprocessing Connection
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings only
    loop = asyncio.get_running_loop()
    conn.send(await _listen(mode))
    c0 = 0.0
    while True:
        msg = await loop.run_in_executor(None, conn.recv)
        if msg == "start":
            c0 = time.process_time()
            conn.send("ok")
        elif msg == "stop":
            conn.send(time.process_time() - c0)
        else:
            return


def _server_main(mode: str, conn) -> None:  # noqa: ANN001
    _pin(1)
    asyncio.run(_serve(mode, conn))


def _pin(cpu: int) -> None:
    """Same core for every server (and another for the client), so they compare like for like."""
    import os

    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu})


async def _calls(port: int, n: int) -> None:
    from cti.agi.peer import asterisk_env, run_agi_call

    env = asterisk_env(uniqueid="1795372412.1", callerid="13800138000", calleridname="Wang Wei")
    for _ in range(n):
        out = await run_agi_call("127.0.0.1", port, env)
        assert out.variables == VARS, out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    procs = {}
    _pin(0)
    for m in MODES:
        a, b = mp.Pipe()
        p = mp.Process(target=_server_main, args=(m, b))
        p.start()
        procs[m] = (a, p, a.recv())
    res: dict[str, list[float]] = {m: [] for m in MODES}

    async def run() -> None:
        for m in MODES:
            await _calls(procs[m][2], 300)  # warm-up
        for r in range(rounds):
            for m in MODES if r % 2 == 0 else MODES[::-1]:
                a, _, port = procs[m]
                a.send("start")
                a.recv()
                await _calls(port, n)
                a.send("stop")
                res[m].append(a.recv() / n * 1e6)

    try:
        asyncio.run(run())
    finally:
        for a, p, _ in procs.values():
            a.send("quit")
            p.join()
    med = {m: statistics.median(v) for m, v in res.items()}
    best = {m: min(v) for m, v in res.items()}
    for m in MODES:
        print(f"{m:14s} server CPU per call: median {med[m]:7.1f} us   best {best[m]:7.1f} us")
    for base in ("bare-protocol", "bare-streams"):
        print(f"cti / {base}: median {med['cti'] / med[base]:.2f}   best {best['cti'] / best[base]:.2f}")


if __name__ == "__main__":
    main()
