"""One websocket client of the hub: a bounded outgoing queue, drained by a task only while non-empty.

An idle connection owns no task. ``offer`` never blocks: when the queue is full the client
is cut off (its transport aborted) so that a stuck browser costs nothing to the others.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import structlog
from aiohttp import web

from cti.agents.accounts import Agent

log = structlog.get_logger(__name__)


class Client:
    __slots__ = ("ws", "request", "agent", "max_queue", "_queue", "_task", "closed", "close_reason", "sent",
                 "__weakref__")

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, agent: Agent, max_queue: int) -> None:
        self.ws = ws
        self.request = request
        self.agent = agent
        self.max_queue = max_queue
        self._queue: deque[str] = deque()
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        self.close_reason: str | None = None
        self.sent = 0

    @property
    def pending(self) -> int:
        return len(self._queue)

    def offer(self, text: str) -> bool:
        """Queue one frame; False (and the client is cut off) when its queue overflows."""
        if self.closed:
            return False
        if len(self._queue) >= self.max_queue:
            log.warning("ws.slow_client_dropped", agent=self.agent.username, queued=len(self._queue))
            self.kill("overflow")
            return False
        if self._task is None and not self._queue:
            self._send_now(text)
            return not self.closed
        self._queue.append(text)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return True

    def _send_now(self, text: str) -> None:
        """Write the frame in the caller's turn of the loop (the usual case: the socket takes it at once);
        only when aiohttp has to wait for the socket to drain does a task finish the send."""
        coro = self.ws.send_str(text, compress=0)
        try:
            waiting = coro.send(None)
        except StopIteration:
            self.sent += 1
            return
        except (ConnectionError, RuntimeError) as exc:
            self.kill(f"send failed: {type(exc).__name__}")
            return
        self._task = asyncio.get_running_loop().create_task(self._finish_send(coro, waiting))

    async def _finish_send(self, coro: Any, waiting: Any) -> None:
        """Resume a send that suspended on back-pressure, then drain what queued meanwhile."""
        try:
            while True:
                error: BaseException | None = None
                try:
                    if waiting is None:
                        await asyncio.sleep(0)
                    else:
                        waiting._asyncio_future_blocking = False  # what a Task does with a yielded future
                        await waiting
                except asyncio.CancelledError:
                    coro.close()
                    raise
                except BaseException as exc:  # delivered into the send, as a plain await would
                    error = exc
                try:
                    waiting = coro.throw(error) if error is not None else coro.send(None)
                except StopIteration:
                    break
            self.sent += 1
        except (ConnectionError, RuntimeError) as exc:
            self.kill(f"send failed: {type(exc).__name__}")
            return
        finally:
            self._task = None
        if self._queue and not self.closed:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._queue and not self.closed:
                await self.ws.send_str(self._queue.popleft(), compress=0)
                self.sent += 1
        except (ConnectionError, RuntimeError) as exc:
            self.kill(f"send failed: {type(exc).__name__}")
        finally:
            self._task = None

    def kill(self, reason: str) -> None:
        """Cut the connection now (no close handshake: the peer is not reading)."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._queue.clear()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def close(self, code: int, message: str) -> None:
        """A polite close (replaced by a newer connection, server stopping)."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = message
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=message.encode()), 1.0)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            transport = self.request.transport
            if transport is not None:
                transport.abort()

    def info(self) -> dict[str, Any]:
        return {"agent": self.agent.username, "pending": len(self._queue), "sent": self.sent}
