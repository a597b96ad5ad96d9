"""The web side's listening socket with a connection cap.

aiohttp closes a connection that has not sent a complete request head within its keep-alive
timeout (armed at connect and after every response: ``http.header_timeout_s``), which bounds idle
and slow-header connections. What it lacks is a cap: every accepted socket is a file descriptor,
and descriptors are shared with FastAGI in the same process. :class:`CappedSite` counts the
connections it hands to aiohttp and closes the ones past ``limit`` at once (one log line per
burst), so a flood of idle sockets fills the web side's budget, never the process's descriptors.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import structlog
from aiohttp import web

log = structlog.get_logger(__name__)

#: Seconds between two ``web.connection_refused`` log lines (a flood must not flood the log).
REFUSAL_LOG_INTERVAL_S = 10.0


class ConnectionCap:
    """How many connections are open, and whether one more may be."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.refused = 0
        self._logged_at = 0.0

    def refuse(self) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self._logged_at >= REFUSAL_LOG_INTERVAL_S:
            self._logged_at = now
            log.warning("web.connection_refused", open=self.open, limit=self.limit, refused_total=self.refused)


class _Refused(asyncio.Protocol):
    """A connection past the cap: closed (RST) as soon as it is made."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()  # type: ignore[attr-defined]


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, counted while it is open."""

    __slots__ = ("inner", "cap", "data_received", "eof_received", "pause_writing", "resume_writing")

    def __init__(self, inner: Any, cap: ConnectionCap) -> None:
        self.inner = inner
        self.cap = cap
        # bound methods: one attribute lookup per read, no extra Python frame
        self.data_received = inner.data_received
        self.eof_received = inner.eof_received
        self.pause_writing = inner.pause_writing
        self.resume_writing = inner.resume_writing

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.cap.open -= 1
        self.inner.connection_lost(exc)


def capped_factory(factory: Callable[[], Any], cap: ConnectionCap) -> Callable[[], asyncio.Protocol]:
    def make() -> asyncio.Protocol:
        if cap.open >= cap.limit:
            cap.refuse()
            return _Refused()
        cap.open += 1
        return _Counted(factory(), cap)

    return make


class CappedSite(web.TCPSite):
    """``web.TCPSite`` whose connections are counted by ``cap`` (past its limit they are closed)."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, cap: ConnectionCap, **kw: Any) -> None:
        super().__init__(runner, host, port, **kw)
        self.cap = cap

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        self._server = await loop.create_server(
            capped_factory(server, self.cap), self._host, self._port, ssl=self._ssl_context,
            backlog=self._backlog, reuse_address=self._reuse_address, reuse_port=self._reuse_port)
