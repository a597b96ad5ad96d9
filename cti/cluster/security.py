"""Security state shared by the cti nodes of one cluster (``bus.url = redis://…``), kept in the bus's Redis.

* **Token secret**: with an empty ``http.token_secret`` the first node to start draws a random
  secret and stores it with ``SET NX`` at ``<stream>:token_secret``; every node reads that value,
  so a token issued by one node is accepted by every other (and survives restarts while the key
  exists). A configured ``http.token_secret`` always wins (nothing is read from Redis).
* **Login rate limits**: :class:`RedisLoginLimiter` counts login attempts per (username, address)
  (from their start, atomically) and failures per address in Redis sorted sets (sliding window,
  same rules as :class:`~cti.web.ratelimit.LoginLimiter`), so failures on one node count on all. If Redis fails
  during a login the node falls back to its own in-process counts (logged), it never locks
  everybody out nor lets everybody through unchecked.
"""

from __future__ import annotations

import secrets
import uuid

import structlog
from redis.exceptions import RedisError

from cti.web.ratelimit import LoginLimiter

log = structlog.get_logger(__name__)


async def shared_token_secret(redis: object, key: str) -> bytes:
    """The cluster's token secret: created once (``SET NX``), then read by every node."""
    await redis.set(key, secrets.token_hex(32), nx=True)  # type: ignore[attr-defined]
    value = await redis.get(key)  # type: ignore[attr-defined]
    if not value:
        raise RuntimeError(f"token secret {key!r} missing in Redis")
    return value.encode() if isinstance(value, str) else bytes(value)


class RedisLoginLimiter:
    """The async counterpart of :class:`LoginLimiter` with its counts in Redis (shared by every node).

    :meth:`begin` adds the attempt to its (username, address) sorted set and counts the set in one
    MULTI transaction, so parallel attempts on any nodes are admitted at most ``per_user`` times.
    """

    def __init__(self, redis: object, prefix: str, per_user: int = 5, per_address: int = 30,
                 window_s: float = 300.0) -> None:
        self.redis = redis
        self.prefix = prefix
        self.per_user = per_user
        self.per_address = per_address
        self.window_s = window_s
        self.fallback = LoginLimiter(per_user, per_address, window_s)

    def _user_key(self, username: str, address: str) -> str:
        return f"{self.prefix}u:{username.lower()}\0{address}"

    def _address_key(self, address: str) -> str:
        return f"{self.prefix}a:{address}"

    async def retry_after(self, username: str, address: str, now: float) -> float:
        """0 when the (username, address) key is not locked, else the seconds to wait. Counts nothing."""
        key = self._user_key(username, address)
        try:
            async with self.redis.pipeline(transaction=False) as p:  # type: ignore[attr-defined]
                p.zremrangebyscore(key, "-inf", now - self.window_s)
                p.zcard(key)
                p.zrange(key, 0, 0, withscores=True)
                _, count, oldest = await p.execute()
            return oldest[0][1] + self.window_s - now if count >= self.per_user and oldest else 0.0
        except (RedisError, OSError) as exc:
            log.warning("auth.limiter_redis_error", error=str(exc), fallback="in-process")
            return self.fallback.retry_after(username, address, now)

    async def begin(self, username: str, address: str, now: float) -> float:
        """Admit an attempt and count it at once (0), or the seconds to wait when the key is locked."""
        key, member = self._user_key(username, address), uuid.uuid4().hex
        try:
            async with self.redis.pipeline(transaction=True) as p:  # type: ignore[attr-defined]
                p.zremrangebyscore(key, "-inf", now - self.window_s)
                p.zadd(key, {member: now})
                p.zcard(key)
                p.zrange(key, 0, 0, withscores=True)
                p.pexpire(key, int(self.window_s * 1000) + 1000)
                _, _, count, oldest, _ = await p.execute()
            if count <= self.per_user:
                return 0.0
            await self.redis.zrem(key, member)  # type: ignore[attr-defined]
            return max(0.001, oldest[0][1] + self.window_s - now) if oldest else 1.0
        except (RedisError, OSError) as exc:
            log.warning("auth.limiter_redis_error", error=str(exc), fallback="in-process")
            return self.fallback.begin(username, address, now)

    async def failed(self, username: str, address: str, now: float) -> None:
        """The admitted attempt was wrong: it stays counted on its key; the address counts it too."""
        self.fallback.begin(username, address, now)
        self.fallback.failed(username, address, now)
        key = self._address_key(address)
        try:
            async with self.redis.pipeline(transaction=True) as p:  # type: ignore[attr-defined]
                p.zadd(key, {uuid.uuid4().hex: now})
                p.pexpire(key, int(self.window_s * 1000) + 1000)
                await p.execute()
        except (RedisError, OSError) as exc:
            log.warning("auth.limiter_redis_error", error=str(exc), fallback="in-process")

    async def succeeded(self, username: str, address: str) -> None:
        self.fallback.succeeded(username, address)
        try:
            await self.redis.delete(self._user_key(username, address))  # type: ignore[attr-defined]
        except (RedisError, OSError) as exc:
            log.warning("auth.limiter_redis_error", error=str(exc), fallback="in-process")

    async def address_failures(self, address: str, now: float) -> int:
        key = self._address_key(address)
        try:
            async with self.redis.pipeline(transaction=False) as p:  # type: ignore[attr-defined]
                p.zremrangebyscore(key, "-inf", now - self.window_s)
                p.zcard(key)
                return int((await p.execute())[1])
        except (RedisError, OSError) as exc:
            log.warning("auth.limiter_redis_error", error=str(exc), fallback="in-process")
            return self.fallback.address_failures(address, now)


class ClusterSecurity:
    """Built by the web server when the bus is on Redis: ``await start()``, then ``secret``/``limiter``."""

    def __init__(self, url: str, stream: str, node_id: str, configured_secret: str) -> None:
        self.url = url
        self.stream = stream
        self.node_id = node_id
        self.configured_secret = configured_secret
        self.redis: object = None
        self.secret: bytes | None = None
        self.limiter: RedisLoginLimiter | None = None

    async def start(self) -> None:
        from cti.bus.redis import redis_client

        self.redis = redis_client(self.url, name=f"cti-security:{self.node_id}", socket_timeout=2.0)
        if self.configured_secret:
            self.secret = self.configured_secret.encode()
        else:
            self.secret = await shared_token_secret(self.redis, f"{self.stream}:token_secret")
            log.info("web.token_secret_shared", key=f"{self.stream}:token_secret")
        self.limiter = RedisLoginLimiter(self.redis, f"{self.stream}:login:")

    async def stop(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()  # type: ignore[attr-defined]
            self.redis = None
