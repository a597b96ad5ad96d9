"""Issue 17, item 2: idle and slow-header HTTP connections are bounded, and however many the web side
gets, FastAGI in the same ``cti serve`` process keeps answering (a real daemon, 1,024-like fd limit)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from daemon_proc import start_daemon

from cti.agi.peer import asterisk_env, run_agi_call


async def _open_idle(port: int, n: int) -> list[socket.socket]:
    """``n`` TCP connections to the web side that never send a byte (kernel backlog or accepted)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect_ex(("127.0.0.1", port))
        except OSError:
            pass
        socks.append(s)
        if len(socks) % 100 == 0:
            await asyncio.sleep(0.05)  # let the daemon accept them
    return socks


async def test_fastagi_answers_while_idle_connections_flood_the_web_side(tmp_path: Path) -> None:
    # 400 descriptors in all: 600 idle web sockets would take every one of them
    d = await start_daemon(tmp_path, {"CTI_AGI_RESERVED_FDS": "128"}, nofile=400)
    socks: list[socket.socket] = []
    try:
        socks = await _open_idle(d.http_port, 600)
        await asyncio.sleep(2.0)  # the daemon has accepted what it will
        t0 = time.monotonic()
        env = asterisk_env(uniqueid="1700000000.1", callerid="13800138000", calleridname="Wang", port=d.agi_port)
        out = await run_agi_call("127.0.0.1", d.agi_port, env, timeout=8.0)
        elapsed = time.monotonic() - t0
        assert out.error is None, d.log_text()[-2000:]
        assert out.variables.get("CTI_QUEUE"), out
        assert elapsed < 5.0  # the decision's deadline is 0.3 s; this only says "not stuck"
        assert '"web.connection_refused"' in d.log_text()
    finally:
        for s in socks:
            s.close()
        await d.stop()


async def test_idle_and_slow_header_connections_are_closed(tmp_path: Path) -> None:
    d = await start_daemon(tmp_path, {"CTI_HTTP_HEADER_TIMEOUT_S": "1.5"})
    try:
        idle = await asyncio.open_connection("127.0.0.1", d.http_port)
        slow = await asyncio.open_connection("127.0.0.1", d.http_port)
        slow[1].write(b"GET /api/me HTTP/1.1\r\nHost: x\r\n")

        async def drip() -> None:
            for _ in range(40):  # one header line a quarter second: never a complete head
                slow[1].write(b"X-a: b\r\n")
                await slow[1].drain()
                await asyncio.sleep(0.25)

        dripper = asyncio.create_task(drip())
        t0 = time.monotonic()
        assert await asyncio.wait_for(idle[0].read(), 10.0) == b""  # closed by the server
        idle_s = time.monotonic() - t0
        try:
            await asyncio.wait_for(slow[0].read(), 10.0)
        except ConnectionResetError:
            pass
        slow_s = time.monotonic() - t0
        dripper.cancel()
        await asyncio.gather(dripper, return_exceptions=True)
        assert idle_s < 8.0 and slow_s < 8.0  # 1.5 s configured; generous on a loaded box
        for _, w in (idle, slow):
            w.close()
    finally:
        await d.stop()
