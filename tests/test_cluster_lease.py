"""Leases and leader election on the real Redis: one holder at a time, failover after a crash,
step-down when Redis is away, singletons that run once across nodes."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis.asyncio as aioredis

from cti.cluster import LeaderElector, Lease, run_singleton
from test_bus_redis import REDIS, TcpRelay


@pytest.fixture
async def r():
    client = aioredis.from_url(REDIS, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def name() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


async def eventually(pred, timeout: float = 10.0) -> None:
    async def go() -> None:
        while not pred():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(go(), timeout)


async def test_a_lease_has_one_holder_and_only_the_holder_renews_or_releases(r, name) -> None:
    a, b = Lease(r, name, "node-a", 5), Lease(r, name, "node-b", 5)
    assert await a.acquire() and await a.acquire()  # again: still ours, extended
    assert not await b.acquire() and not await b.renew() and not await b.release()
    assert await a.holder() == "node-a" and await a.renew()
    assert await a.release() and await b.acquire()
    assert not await a.renew() and await b.holder() == "node-b"
    await b.release()


async def test_an_unrenewed_lease_expires_and_the_old_holder_cannot_renew_it(r, name) -> None:
    a, b = Lease(r, name, "node-a", 0.2), Lease(r, name, "node-b", 5)
    assert await a.acquire()
    while not await b.acquire():
        await asyncio.sleep(0.02)
    assert not await a.renew() and await b.holder() == "node-b"
    await b.release()


class Recorder:
    def __init__(self, log: list[tuple[str, str]], node: str) -> None:
        self.log, self.node = log, node

    async def elected(self) -> None:
        self.log.append(("elected", self.node))

    async def deposed(self) -> None:
        self.log.append(("deposed", self.node))


async def test_the_leader_crashes_and_another_node_takes_over_after_the_ttl(r, name) -> None:
    log: list[tuple[str, str]] = []
    electors = {n: LeaderElector(Lease(r, name, n, 0.6), Recorder(log, n).elected, Recorder(log, n).deposed)
                for n in ("a", "b", "c")}
    for e in electors.values():
        await e.start()
    try:
        await eventually(lambda: any(e.leader for e in electors.values()))
        await asyncio.sleep(0.5)  # several renewal rounds: still one leader
        [first] = [n for n, e in electors.items() if e.leader]
        assert log == [("elected", first)]
        t0 = time.monotonic()
        await electors[first].stop(release=False)  # a crash: the lease is left to expire
        await eventually(lambda: sum(e.leader for e in electors.values()) == 1)
        failover = time.monotonic() - t0
        [second] = [n for n, e in electors.items() if e.leader]
        assert second != first and log[-1] == ("elected", second)
        assert log.count(("elected", second)) == 1 and await r.get(f"cti:lease:{name}") == second
        print(f"failover after crash: {failover:.2f} s (ttl 0.6 s)")
        await electors[second].stop()  # released: the third takes over without waiting for expiry
        await eventually(lambda: sum(e.leader for e in electors.values()) == 1)
    finally:
        for e in electors.values():
            await e.stop()


async def test_a_leader_cut_off_from_redis_steps_down_before_another_is_elected(r, name) -> None:
    relay = await TcpRelay().start()
    cut_client = aioredis.from_url(relay.url, decode_responses=True, socket_timeout=0.5, socket_connect_timeout=0.5)
    log: list[tuple[str, str]] = []
    a = LeaderElector(Lease(cut_client, name, "a", 0.9), Recorder(log, "a").elected, Recorder(log, "a").deposed)
    b = LeaderElector(Lease(r, name, "b", 0.9), Recorder(log, "b").elected, Recorder(log, "b").deposed)
    await a.start()
    await eventually(lambda: a.leader)
    await b.start()
    try:
        await relay.cut()
        await eventually(lambda: b.leader)
        assert log == [("elected", "a"), ("deposed", "a"), ("elected", "b")]
        assert not a.leader
    finally:
        await a.stop()
        await b.stop()
        await cut_client.aclose()
        await relay.close()


class Worker:
    running: set[str] = set()
    overlaps = 0

    def __init__(self, node: str, fail: bool = False) -> None:
        self.node, self.fail = node, fail

    async def start(self) -> None:
        if self.fail:
            raise RuntimeError("cannot start here")
        if Worker.running:
            Worker.overlaps += 1
        Worker.running.add(self.node)

    async def stop(self) -> None:
        Worker.running.discard(self.node)


async def test_a_singleton_runs_on_one_node_and_moves_when_that_node_dies(r, name) -> None:
    Worker.running, Worker.overlaps = set(), 0
    handles = {n: await run_singleton(name, lambda n=n: Worker(n), redis=r, node_id=n, ttl=0.6) for n in "abc"}
    try:
        await eventually(lambda: len(Worker.running) == 1)
        [first] = Worker.running
        assert [n for n, h in handles.items() if h.running] == [first]
        await handles.pop(first).stop(release=False)
        await eventually(lambda: len(Worker.running) == 1)
        assert first not in Worker.running and Worker.overlaps == 0
    finally:
        for h in handles.values():
            await h.stop()
    assert not Worker.running


async def test_a_node_that_cannot_start_the_service_lets_another_run_it(r, name) -> None:
    Worker.running, Worker.overlaps = set(), 0
    bad = await run_singleton(name, lambda: Worker("bad", fail=True), redis=r, node_id="bad", ttl=0.6)
    await eventually(lambda: bad.elector.terms >= 1 and not bad.elector.leader)
    good = await run_singleton(name, lambda: Worker("good"), redis=r, node_id="good", ttl=0.6)
    try:
        await eventually(lambda: Worker.running == {"good"})
    finally:
        await bad.stop()
        await good.stop()


async def test_without_redis_a_singleton_just_runs_here() -> None:
    Worker.running = set()
    h = await run_singleton("x", lambda: Worker("solo"), redis=None, node_id="solo")
    assert h.running and Worker.running == {"solo"}
    await h.stop()
    assert not Worker.running
