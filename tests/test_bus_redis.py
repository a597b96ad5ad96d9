"""The Redis event bus: two nodes (two RedisBus instances) on the real Redis of this machine.

Loss of Redis is real: a TCP relay on loopback that a test cuts and restores, and
``CLIENT KILL`` of a node's connections on the Redis server itself.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from cti.bus import create_bus
from cti.bus.redis import BusUnavailable, RedisBus
from cti.config import BusConfig

REDIS = "redis://127.0.0.1:6379/0"


class TcpRelay:
    """Forwards loopback connections to Redis; ``cut()`` drops them all and refuses new ones."""

    def __init__(self, target_port: int = 6379) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> "TcpRelay":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, uw))

        async def pump(r: asyncio.StreamReader, w: asyncio.StreamWriter, other: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                other.transport.abort()
                w.transport.abort()

        for t in (asyncio.ensure_future(pump(reader, uw, writer)), asyncio.ensure_future(pump(ur, writer, uw))):
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._server is not None:
            await self.cut()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest.fixture
async def stream():
    name = f"cti:test:{uuid.uuid4().hex[:10]}"
    yield name
    r = aioredis.from_url(REDIS)
    await r.delete(name)
    await r.aclose()


def node(url: str, node_id: str, stream: str, **kw: Any) -> RedisBus:
    return RedisBus(url, node_id=node_id, stream=stream, reconnect_min=0.02, reconnect_max=0.2, block_ms=200, **kw)


async def collect(sub, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    async def go() -> None:
        while len(out) < n:
            out.append((await sub.get()).payload)

    await asyncio.wait_for(go(), timeout)
    return out


async def settle(*buses: RedisBus, timeout: float = 10.0) -> None:
    """Wait until every node's writer drained and every reader reached the stream's end."""
    r = aioredis.from_url(REDIS, decode_responses=True)
    try:
        async def go() -> None:
            while True:
                [stream] = {b.stream for b in buses}
                last = await r.xrevrange(stream, count=1)
                end = last[0][0] if last else "0-0"
                if all(not b._outbox and b.last_id == end for b in buses):
                    return
                await asyncio.sleep(0.02)

        await asyncio.wait_for(go(), timeout)
    finally:
        await r.aclose()


async def test_each_node_gets_every_message_once_local_ones_without_the_echo(stream: str) -> None:
    a, b = node(REDIS, "node-a", stream), node(REDIS, "node-b", stream)
    await a.start()
    await b.start()
    try:
        sa, sb = a.subscribe("call."), b.subscribe("call.")
        for i in range(100):
            a.publish("call.ringing", {"server": "pbx1", "i": i})
        b.publish("call.ended", {"server": "pbx2", "i": 1000})
        a.publish("agent.state", {"server": "pbx1"})  # not matching the subscriptions
        got_b = await collect(sb, 101)
        await settle(a, b)
        got_a = [sa.get_nowait() for _ in range(len(sa))]
        assert sorted(p["i"] for p in got_b) == list(range(100)) + [1000]
        assert [p["i"] for p in got_b if p["i"] < 1000] == list(range(100))  # in publish order
        assert sorted(m.payload["i"] for m in got_a) == list(range(100)) + [1000]  # own ones once, no echo
        assert len(sb) == 0 and a.duplicates == b.duplicates == 0
    finally:
        await a.close()
        await b.close()


async def test_a_node_cut_off_from_redis_replays_what_it_missed_without_duplicates(stream: str) -> None:
    relay = await TcpRelay().start()
    a, b = node(REDIS, "node-a", stream), node(relay.url, "node-b", stream)
    await a.start()
    await b.start()
    try:
        sa, sb = a.subscribe("call."), b.subscribe("call.")
        a.publish("call.queued", {"i": 0})
        assert [p["i"] for p in await collect(sb, 1)] == [0]
        await relay.cut()
        for i in range(1, 51):
            a.publish("call.ringing", {"i": i})
        for i in range(5):
            b.publish("call.answered", {"j": i})  # kept in b's outbox while Redis is away
        await settle(a)
        assert len(sb) == 5  # b's own, locally, at once; none of a's yet
        await asyncio.sleep(0.3)  # b's reader really fails and retries meanwhile
        await relay.start()
        got = await collect(sb, 55)
        assert [p["j"] for p in got[:5]] == list(range(5))
        assert [p["i"] for p in got[5:]] == list(range(1, 51))
        got_a = await collect(sa, 56)
        assert [p["j"] for p in got_a if "j" in p] == list(range(5))
        await settle(a, b)
        assert len(sa) == len(sb) == 0 and b.reconnects >= 1 and b.gaps == 0
    finally:
        await a.close()
        await b.close()
        await relay.close()


async def test_client_kill_mid_traffic_loses_and_duplicates_nothing(stream: str) -> None:
    a, b = node(REDIS, "node-a", stream), node(REDIS, "node-b", stream)
    await a.start()
    await b.start()
    admin = aioredis.from_url(REDIS, decode_responses=True)
    try:
        sb = b.subscribe("call.", maxsize=10_000)

        async def traffic() -> None:
            for i in range(300):
                a.publish("call.ringing", {"i": i})
                if i % 10 == 0:
                    await asyncio.sleep(0.005)

        async def killer() -> int:
            killed = 0
            for _ in range(3):
                await asyncio.sleep(0.03)
                for c in await admin.client_list():
                    if c.get("name", "").startswith(("cti-bus-r:node-b", "cti-bus-w:node-a")):
                        await admin.client_kill_filter(_id=c["id"])
                        killed += 1
            return killed

        _, killed = await asyncio.gather(traffic(), killer())
        assert killed >= 2
        got = await collect(sb, 300)
        await settle(a, b)
        assert [p["i"] for p in got] == list(range(300)) and len(sb) == 0
        assert b.reconnects >= 1
    finally:
        await admin.aclose()
        await a.close()
        await b.close()


async def test_a_retried_append_is_delivered_once(stream: str) -> None:
    """A publisher whose XADD reached Redis but whose reply was lost appends the entry again."""
    a, b = node(REDIS, "node-a", stream), node(REDIS, "node-b", stream)
    await a.start()
    await b.start()
    try:
        sb = b.subscribe("call.")
        a.publish("call.ringing", {"i": 1})
        await settle(a, b)
        r = aioredis.from_url(REDIS, decode_responses=True)
        [(_, fields)] = await r.xrevrange(stream, count=1)
        await r.xadd(stream, fields)  # the same entry appended twice
        await r.aclose()
        a.publish("call.ringing", {"i": 2})
        got = await collect(sb, 2)
        await settle(a, b)
        assert [p["i"] for p in got] == [1, 2] and len(sb) == 0 and b.duplicates == 1
    finally:
        await a.close()
        await b.close()


async def test_an_outage_longer_than_retention_is_reported_as_a_gap(stream: str) -> None:
    relay = await TcpRelay().start()
    a, b = node(REDIS, "node-a", stream, maxlen=10), node(relay.url, "node-b", stream, maxlen=10)
    await a.start()
    await b.start()
    try:
        sb = b.subscribe("call.")
        await relay.cut()
        for i in range(1000):
            a.publish("call.ringing", {"i": i})
        await settle(a)
        await relay.start()
        await asyncio.wait_for(b.connected.wait(), 10)
        await settle(a, b)
        got = [sb.get_nowait().payload["i"] for _ in range(len(sb))]
        assert b.gaps == 1 and got == sorted(got) and got[-1] == 999 and len(got) < 1000
    finally:
        await a.close()
        await b.close()
        await relay.close()


async def test_unreachable_redis_fails_start_naming_the_key(stream: str) -> None:
    bus = RedisBus("redis://127.0.0.1:1/0", node_id="x", stream=stream)
    with pytest.raises(BusUnavailable, match="bus.url"):
        await bus.start()


async def test_factory_chooses_the_backend_by_url() -> None:
    from cti.bus import InMemoryBus

    assert isinstance(create_bus(BusConfig(), "n"), InMemoryBus)
    bus = create_bus(BusConfig(url=REDIS, stream="s", maxlen=5000), "n")
    assert isinstance(bus, RedisBus) and (bus.stream, bus.maxlen, bus.node_id) == ("s", 5000, "n")


async def test_a_restarted_node_with_a_stable_id_replays_what_was_published_while_it_was_down(stream: str) -> None:
    a = node(REDIS, "node-a", stream)
    b1 = node(REDIS, "node-b", stream, resume=True, cursor_every=0.05)
    await a.start()
    await b1.start()
    b2 = None
    try:
        sb1 = b1.subscribe("call.")
        a.publish("call.queued", {"i": 0})
        b1.publish("call.queued", {"j": 0})
        assert len(await collect(sb1, 2)) == 2
        await settle(a, b1)
        await b1.close()  # the process stops (the cursor is saved)
        for i in range(1, 21):
            a.publish("call.ringing", {"i": i})
        await settle(a)
        b2 = node(REDIS, "node-b", stream, resume=True)
        sb2 = b2.subscribe("call.")
        await b2.start()
        got = await collect(sb2, 20)
        await settle(a, b2)
        assert [p["i"] for p in got] == list(range(1, 21)) and len(sb2) == 0 and b2.gaps == 0
        fresh = node(REDIS, "node-c", stream, resume=True)  # no cursor yet: starts at the end
        await fresh.start()
        assert fresh.last_id == b2.last_id
        await fresh.close()
    finally:
        await a.close()
        await b1.close()
        if b2 is not None:
            await b2.close()
        r = aioredis.from_url(REDIS)
        await r.delete(f"{stream}:cursor:node-b", f"{stream}:cursor:node-c")
        await r.aclose()


async def test_close_sends_what_was_published_before_it_even_beyond_one_batch(stream: str) -> None:
    """close() right after a burst: every message of the outbox reaches the stream (batches of 10 here)."""
    a = node(REDIS, "a", stream, batch=10)
    await a.start()
    for i in range(95):
        a.publish("call.answered", {"i": i})
    await a.close(flush_timeout=5.0)
    r = aioredis.from_url(REDIS, decode_responses=True)
    try:
        entries = await r.xrange(stream)
    finally:
        await r.aclose()
    assert [int(f["s"]) for _, f in entries] == list(range(1, 96))
