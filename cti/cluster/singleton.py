"""Run one instance of something across the cluster: whoever holds the lease runs it.

    handle = await run_singleton("ticket-escalation", lambda: TicketScheduler(...), redis=r, node_id=n, ttl=5)
    handle.instance     # the running object on the node that holds the lease, else None
    await handle.stop()

``factory()`` builds a fresh object with ``async start()`` / ``async stop()`` each time this
node is elected (an object is never restarted after it was stopped). Without Redis
(``redis=None``: one node) the object simply runs here.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import redis.asyncio as aioredis
import structlog

from cti.cluster.lease import LeaderElector, Lease

log = structlog.get_logger(__name__)


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Singleton:
    """The handle of one cluster-wide singleton on this node."""

    def __init__(self, name: str, factory: Callable[[], Any], elector: LeaderElector | None) -> None:
        self.name = name
        self.factory = factory
        self.elector = elector
        self.instance: Any = None
        self.on_change: Callable[[str, Any], None] | None = None

    @property
    def running(self) -> bool:
        return self.instance is not None

    async def _start(self) -> None:
        obj = self.factory()
        try:
            await obj.start()
        except BaseException:
            try:  # a half-started object (or one cancelled while starting) is stopped, not leaked
                await obj.stop()
            except Exception:
                log.exception("singleton.stop_after_failed_start", singleton=self.name)
            raise
        self.instance = obj  # only once started: ``running`` means "serving here"
        log.info("singleton.started", singleton=self.name)
        if self.on_change is not None:
            self.on_change("started", obj)

    async def _stop(self) -> None:
        obj, self.instance = self.instance, None
        if obj is None:
            return
        await obj.stop()
        log.info("singleton.stopped", singleton=self.name)
        if self.on_change is not None:
            self.on_change("stopped", obj)

    async def stop(self, *, release: bool = True) -> None:
        """Stop here (and let another node take over: at once, or after ``ttl`` with ``release=False``)."""
        if self.elector is not None:
            await self.elector.stop(release=release)
        else:
            await self._stop()


async def run_singleton(name: str, factory: Callable[[], Any], *, redis: aioredis.Redis | None, node_id: str,
                        ttl: float = 5.0, on_change: Callable[[str, Any], None] | None = None,
                        prefix: str = "cti:lease:") -> Singleton:
    """Compete for lease ``name``; run ``factory()``'s object while holding it."""
    if redis is None:
        handle = Singleton(name, factory, None)
        handle.on_change = on_change
        await handle._start()
        return handle
    handle = Singleton(name, factory, None)
    handle.on_change = on_change
    handle.elector = LeaderElector(Lease(redis, name, node_id, ttl, prefix=prefix), handle._start, handle._stop)
    await handle.elector.start()
    return handle


__all__ = ["Singleton", "run_singleton"]
