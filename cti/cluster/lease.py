"""Leases in Redis and the leader election built on them.

A :class:`Lease` is one Redis key ``<prefix><name>`` (default prefix ``cti:lease:``; the daemon
uses ``<bus.stream>:lease:`` so that two clusters sharing a Redis never share leases) holding the owner's node id with a
time to live: taken with ``SET NX PX``, renewed by a Lua check-and-extend (only by its
owner), released by a Lua check-and-delete. Nobody else can take it until it is released
or expires, so a node that dies (or is cut off) loses it at most ``ttl`` after its last
renewal.

:class:`LeaderElector` keeps trying to take one lease and runs ``on_elected`` while it
holds it and ``on_deposed`` when it loses it. The holder renews every ``ttl/3``; when it
cannot renew (Redis away) it steps down before its lease can have expired in Redis
(no two holders at once, short of clock skew across a ``ttl``), and a follower takes over
within ``ttl + ttl/3`` of the holder's death.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from cti.cancel import cancel_and_wait

log = structlog.get_logger(__name__)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Lease:
    """One named lease for ``node_id`` (``ttl`` seconds) in Redis."""

    def __init__(self, redis: aioredis.Redis, name: str, node_id: str, ttl: float, *,
                 prefix: str = "cti:lease:") -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.redis = redis
        self.name = name
        self.key = f"{prefix}{name}"
        self.node_id = node_id
        self.ttl = ttl
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    @property
    def ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    async def acquire(self) -> bool:
        """Take the lease if free (or extend it if already ours)."""
        if await self.redis.set(self.key, self.node_id, nx=True, px=self.ttl_ms):
            return True
        return await self.renew()

    async def renew(self) -> bool:
        """Extend the lease by ``ttl`` if this node holds it."""
        return bool(await self._renew(keys=[self.key], args=[self.node_id, self.ttl_ms]))

    async def release(self) -> bool:
        """Give the lease up if this node holds it."""
        return bool(await self._release(keys=[self.key], args=[self.node_id]))

    async def holder(self) -> str | None:
        return await self.redis.get(self.key)


class LeaderElector:
    """Runs ``on_elected()`` while this node holds ``lease``, ``on_deposed()`` when it stops holding it.

    ``on_elected`` runs in its own task (the lease keeps being renewed meanwhile); if it
    raises, the lease is released so another node may try, and this node waits
    ``retry_after`` (default ``ttl``) before competing again.
    """

    def __init__(self, lease: Lease, on_elected: Callable[[], Awaitable[None]],
                 on_deposed: Callable[[], Awaitable[None]], *, retry_after: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lease = lease
        self.on_elected = on_elected
        self.on_deposed = on_deposed
        self.retry_after = lease.ttl if retry_after is None else retry_after
        self.clock = clock
        self.interval = lease.ttl / 3
        self.leader = False
        self.elected = asyncio.Event()
        self.terms = 0
        self._valid_until = 0.0
        self._cooldown_until = 0.0
        self._starting: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.lease.name

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"elector-{self.lease.name}")

    async def stop(self, *, release: bool = True) -> None:
        """Stop competing; step down if leading. ``release=False`` leaves the lease to expire
        (what a crash looks like to the other nodes)."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        if self.leader:
            await self._step_down("stopped", release=release)

    async def _run(self) -> None:
        while True:
            started = self.clock()
            try:
                if self.leader:
                    await self._keep(started)
                elif started >= self._cooldown_until:
                    await self._try(started)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the election die silently
                log.exception("lease.elector_error", lease=self.lease.name)
            await asyncio.sleep(max(0.0, self.interval - (self.clock() - started)))

    async def _try(self, started: float) -> None:
        try:
            got = await asyncio.wait_for(self.lease.acquire(), self.interval)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            log.debug("lease.acquire_failed", lease=self.lease.name, error=str(exc))
            return
        if not got:
            return
        self._valid_until = started + self.lease.ttl
        self.leader = True
        self.terms += 1
        self.elected.set()
        log.info("lease.elected", lease=self.lease.name, node_id=self.lease.node_id)
        self._starting = asyncio.create_task(self.on_elected(), name=f"elected-{self.lease.name}")

    async def _keep(self, started: float) -> None:
        if self._starting is not None and self._starting.done():
            exc = None if self._starting.cancelled() else self._starting.exception()
            self._starting = None
            if exc is not None:
                log.error("lease.start_failed", lease=self.lease.name, error=repr(exc))
                self._cooldown_until = self.clock() + self.retry_after
                await self._step_down("start_failed", release=True)
                return
        budget = self._valid_until - started - self.interval
        renewed: bool | None
        try:
            renewed = await asyncio.wait_for(self.lease.renew(), max(0.05, min(self.interval, budget)))
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            renewed = None
            log.warning("lease.renew_failed", lease=self.lease.name, error=str(exc))
        if renewed:
            self._valid_until = started + self.lease.ttl
        elif renewed is False:
            await self._step_down("lost", release=False)
        elif self.clock() >= self._valid_until - self.interval:
            # the next renewal would come after the lease may have expired in Redis
            await self._step_down("unrenewable", release=False)

    async def _step_down(self, reason: str, *, release: bool) -> None:
        self.leader = False
        self.elected.clear()
        log.warning("lease.deposed", lease=self.lease.name, node_id=self.lease.node_id, reason=reason)
        if self._starting is not None:
            self._starting.cancel()
            await asyncio.gather(self._starting, return_exceptions=True)
            self._starting = None
        try:
            await self.on_deposed()
        except Exception:
            log.exception("lease.stop_failed", lease=self.lease.name)
        if release:
            try:
                await asyncio.wait_for(self.lease.release(), self.interval)
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                log.warning("lease.release_failed", lease=self.lease.name, error=str(exc))


__all__ = ["Lease", "LeaderElector"]
