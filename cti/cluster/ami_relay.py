"""Agent actions from any node: the request travels on the bus to the node that consumes that Asterisk.

An agent's console may be connected to node B while node A holds the AMI link of the agent's
Asterisk. :class:`RemoteAmi` (on any node) publishes ``ami.request``
{server, request_id, method, args, at}; :class:`AmiActionRelay` (on every node) executes it if
this node runs that server's AmiService, and publishes ``ami.reply``
{server, request_id, ok, headers | error, message, at}. A request is executed at most once
(never re-sent: an ``Originate`` must not ring twice); with no owner, or during a failover,
the caller gets :class:`RemoteAmiError` after ``timeout``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Callable

import structlog

from cti.ami.link import AmiActionError
from cti.ami.service import AmiService

log = structlog.get_logger(__name__)

REQUEST = "ami.request"
REPLY = "ami.reply"
#: AmiService methods that may be called from another node
METHODS = ("queue_add", "queue_remove", "queue_pause", "queue_penalty", "originate")


class RemoteAmiError(RuntimeError):
    """The action failed on the owning node (``message`` is Asterisk's) or nobody answered."""

    def __init__(self, message: str, *, asterisk: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.asterisk = asterisk


class AmiActionRelay:
    """Executes ``ami.request`` for the servers whose AmiService runs on this node."""

    def __init__(self, bus: Any, services: Callable[[str], AmiService | None]) -> None:
        self.bus = bus
        self.services = services
        self._task: asyncio.Task[None] | None = None
        self.executed = 0

    async def start(self) -> None:
        sub = self.bus.subscribe(REQUEST, maxsize=10_000)
        self._task = asyncio.create_task(self._run(sub), name="ami-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self, sub: Any) -> None:
        try:
            async for msg in sub:
                p = msg.payload
                svc = self.services(str(p.get("server")))
                if svc is None or p.get("method") not in METHODS:
                    continue  # another node's server (or not an action we relay)
                asyncio.create_task(self._execute(svc, p))
        finally:
            sub.close()

    async def _execute(self, svc: AmiService, p: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"server": p["server"], "request_id": p.get("request_id"), "at": time.time()}
        try:
            resp = await getattr(svc, p["method"])(*p.get("args", []), **p.get("kwargs", {}))
            self.executed += 1
            reply.update(ok=True, headers=dict(getattr(resp, "fields", None) or {}))
        except AmiActionError as exc:
            reply.update(ok=False, error="asterisk", message=exc.message)
        except Exception as exc:  # noqa: BLE001 - reported to the requesting node
            reply.update(ok=False, error=type(exc).__name__, message=str(exc))
        log.info("ami.relayed", server=p["server"], method=p["method"], ok=reply["ok"])
        self.bus.publish(REPLY, reply)


class RemoteAmi:
    """The AmiService agent actions of ``server``, wherever its consumer runs."""

    def __init__(self, bus: Any, server: str, *, timeout: float = 5.0) -> None:
        self.bus = bus
        self.server = server
        self.timeout = timeout

    async def call(self, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if method not in METHODS:
            raise ValueError(f"not a relayed AMI action: {method}")
        rid = uuid.uuid4().hex
        with self.bus.subscribe(REPLY, maxsize=1000) as sub:
            self.bus.publish(REQUEST, {"server": self.server, "request_id": rid, "method": method,
                                       "args": list(args), "kwargs": kwargs, "at": time.time()})

            async def wait() -> dict[str, Any]:
                async for m in sub:
                    if m.payload.get("request_id") == rid:
                        return m.payload
                raise RemoteAmiError("bus closed")

            try:
                reply = await asyncio.wait_for(wait(), self.timeout)
            except asyncio.TimeoutError:
                raise RemoteAmiError(f"no node answered {method} for {self.server} within {self.timeout} s") from None
        if not reply.get("ok"):
            raise RemoteAmiError(reply.get("message") or reply.get("error") or "failed",
                                 asterisk=reply.get("error") == "asterisk")
        return reply.get("headers") or {}

    async def queue_pause(self, interface: str, paused: bool, reason: str | None = None,
                          queue: str | None = None) -> dict[str, Any]:
        return await self.call("queue_pause", interface, paused, reason=reason, queue=queue)

    async def queue_add(self, queue: str, interface: str, member_name: str | None = None, penalty: int = 0,
                        **kw: Any) -> dict[str, Any]:
        return await self.call("queue_add", queue, interface, member_name, penalty, **kw)

    async def queue_remove(self, queue: str, interface: str) -> dict[str, Any]:
        return await self.call("queue_remove", queue, interface)


__all__ = ["AmiActionRelay", "RemoteAmi", "RemoteAmiError"]
