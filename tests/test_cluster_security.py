"""Security state shared through Redis (bus.url = redis://): two daemons on the real PostgreSQL and
Redis, over HTTP. A token issued by node A is accepted by node B; failed logins on A count on B;
a configured http.token_secret wins over the shared one; the Redis limiter follows the
in-process limiter's rules."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from cti.app import Daemon
from cti.cluster.security import RedisLoginLimiter, shared_token_secret
from cti.config import Settings
from cti.web.tokens import TokenSigner
from test_web_support import PASSWORD, seed

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def r() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS, decode_responses=True)
    yield client
    await client.aclose()


def node(settings: Settings, stream: str, name: str, secret: str = "") -> Daemon:
    s = settings.replace("ami", enabled=False).replace("agi", port=0).replace("http", port=0, token_secret=secret)
    return Daemon(s.replace("bus", url=REDIS, stream=stream).replace("cluster", node_id=name))


async def cleanup(r: aioredis.Redis, stream: str) -> None:
    keys = [k async for k in r.scan_iter(match=f"{stream}*")]
    if keys:
        await r.delete(*keys)


# -- the Redis-backed pieces on their own ------------------------------------------------------
async def test_the_secret_is_drawn_once_and_read_by_everyone(r: aioredis.Redis) -> None:
    key = f"cti:test:{uuid.uuid4().hex[:6]}:token_secret"
    try:
        first, second = await asyncio.gather(shared_token_secret(r, key), shared_token_secret(r, key))
        assert first == second and len(first) == 64
        token, _ = TokenSigner(first, 60).issue(7, "alice", "agent", now=1000.0)
        assert TokenSigner(second, 60).verify(token, 1001.0).agent_id == 7
    finally:
        await r.delete(key)


async def test_redis_limiter_counts_per_user_and_address_across_instances(r: aioredis.Redis) -> None:
    prefix = f"cti:test:{uuid.uuid4().hex[:6]}:login:"
    a = RedisLoginLimiter(r, prefix, per_user=3, per_address=5, window_s=100)
    b = RedisLoginLimiter(r, prefix, per_user=3, per_address=5, window_s=100)  # "another node"
    try:
        for i in range(3):
            assert await b.begin("alice", "1.2.3.4", 10.0 + i) == 0       # counted when it starts
            await a.failed("alice", "1.2.3.4", 10.0 + i)
        assert await b.begin("alice", "1.2.3.4", 20.0) == pytest.approx(90.0)
        assert await b.retry_after("ALICE", "1.2.3.4", 20.0) > 0
        assert await b.retry_after("alice", "5.6.7.8", 20.0) == 0
        for name in ("bob", "carol"):
            assert await b.begin(name, "1.2.3.4", 21.0) == 0
            await b.failed(name, "1.2.3.4", 21.0)
        assert await a.address_failures("1.2.3.4", 23.0) == 5            # counted on both nodes
        assert await a.begin("dave", "1.2.3.4", 23.0) == 0               # ... but never a lockout (NAT)
        assert await b.retry_after("alice", "1.2.3.4", 110.5) == 0       # the window has passed
        assert await a.begin("erin", "9.9.9.9", 200.0) == 0
        await a.failed("erin", "9.9.9.9", 200.0)
        await b.succeeded("erin", "9.9.9.9")                              # success clears the user key everywhere
        assert await r.zcard(f"{prefix}u:erin\0009.9.9.9") == 0
        assert 0 < await r.pttl(f"{prefix}a:9.9.9.9") <= 101_000          # keys expire with the window
    finally:
        await cleanup(r, prefix)


async def test_redis_limiter_admits_parallel_attempts_at_most_per_user_times(r: aioredis.Redis) -> None:
    prefix = f"cti:test:{uuid.uuid4().hex[:6]}:login:"
    nodes = [RedisLoginLimiter(r, prefix, per_user=5, window_s=100) for _ in range(3)]
    try:
        waits = await asyncio.gather(*(nodes[i % 3].begin("alice", "1.2.3.4", 10.0) for i in range(60)))
        assert sum(1 for w in waits if w == 0) == 5
        assert await r.zcard(f"{prefix}u:alice\0001.2.3.4") == 5        # the refused ones left no trace
    finally:
        await cleanup(r, prefix)


async def test_redis_limiter_falls_back_to_in_process_counts_when_redis_fails() -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1/0", decode_responses=True, socket_connect_timeout=0.5)
    lim = RedisLoginLimiter(dead, "x:", per_user=2, window_s=100)
    try:
        await lim.failed("alice", "1.2.3.4", 10.0)
        assert await lim.retry_after("alice", "1.2.3.4", 11.0) == 0
        await lim.failed("alice", "1.2.3.4", 11.0)
        assert await lim.retry_after("alice", "1.2.3.4", 12.0) == pytest.approx(98.0)
    finally:
        await dead.aclose()


# -- two daemons over HTTP ---------------------------------------------------------------------
@pytest.mark.parametrize("db_url", [pytest.param("pg", marks=pytest.mark.pg)], indirect=True)
async def test_tokens_and_login_limits_hold_on_every_node(settings: Settings, r: aioredis.Redis) -> None:
    stream = f"cti:test:{uuid.uuid4().hex[:6]}"
    a, b = node(settings, stream, "a"), node(settings, stream, "b")
    await a.start()
    try:
        await b.start()
        try:
            await seed(a)
            base_a, base_b = f"http://127.0.0.1:{a.web.port}", f"http://127.0.0.1:{b.web.port}"
            async with aiohttp.ClientSession() as http:
                async with http.post(base_a + "/api/login", json={"username": "alice", "password": PASSWORD}) as resp:
                    assert resp.status == 200
                    token = (await resp.json())["token"]
                async with http.get(base_b + "/api/me", headers={"Authorization": f"Bearer {token}"}) as resp:
                    assert resp.status == 200, await resp.text()
                    me = (await resp.json())["agent"]
                    assert me["username"] == "alice"
                ws = await http.ws_connect(base_b + "/ws", headers={"Authorization": f"Bearer {token}"})
                assert (await ws.receive_json(timeout=5))["type"] == "hello"
                await ws.close()
                forged, _ = TokenSigner(b"not-the-cluster-secret-at-all!!!", 3600).issue(
                    me["id"], "alice", "agent", now=time.time())
                async with http.get(base_b + "/api/me", headers={"Authorization": f"Bearer {forged}"}) as resp:
                    assert resp.status == 401

                # 5 failures (the per-user limit) spread over both nodes: the next attempt is refused on both
                for i in range(5):
                    base = base_a if i % 2 else base_b
                    async with http.post(base + "/api/login", json={"username": "bob", "password": "wrong"}) as resp:
                        assert resp.status == 401
                for base in (base_a, base_b):
                    async with http.post(base + "/api/login", json={"username": "bob", "password": PASSWORD}) as resp:
                        assert resp.status == 429
                        assert int(resp.headers["Retry-After"]) > 0
                # another user from the same address is not blocked (under the address cap)
                async with http.post(base_b + "/api/login", json={"username": "sue", "password": PASSWORD}) as resp:
                    assert resp.status == 200
        finally:
            await b.stop()
    finally:
        await a.stop()
        await cleanup(r, stream)


@pytest.mark.parametrize("db_url", [pytest.param("pg", marks=pytest.mark.pg)], indirect=True)
async def test_a_configured_secret_wins_over_the_shared_one(settings: Settings, r: aioredis.Redis) -> None:
    stream = f"cti:test:{uuid.uuid4().hex[:6]}"
    configured = "configured-secret-0123456789abcdef"
    a = node(settings, stream, "a", secret=configured)
    await a.start()
    try:
        await seed(a)
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{a.web.port}/api/login",
                                 json={"username": "alice", "password": PASSWORD}) as resp:
                token = (await resp.json())["token"]
        assert TokenSigner(configured.encode(), 60).verify(token, time.time()).username == "alice"
        assert await r.get(f"{stream}:token_secret") is None   # nothing drawn nor stored
    finally:
        await a.stop()
        await cleanup(r, stream)
