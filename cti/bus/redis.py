"""Event bus across cti nodes on one Redis Stream, behind the :class:`~cti.bus.memory.EventBus` interface.

* ``publish(topic, payload)`` stays synchronous and non-blocking: the message goes to this
  node's subscribers at once (exactly once, never again when it comes back from Redis) and
  into a bounded outbox that a writer task appends to the stream
  (``XADD <stream> MAXLEN ~ <maxlen>``: bounded retention). Each entry carries the topic,
  the JSON payload, the origin node id and a per-process sequence number.
* A reader task follows the stream with ``XREAD BLOCK`` from the last id it processed and
  hands the other nodes' messages to local subscribers. When Redis goes away it reconnects
  with capped exponential backoff and jitter and resumes from that id: what it missed is
  replayed, in order, and nothing is delivered twice (entries at or before the last id are
  skipped; an entry written twice by a publisher's retry is recognised by origin+sequence).
  If the stream was trimmed past the last id while this node was away (detected from
  the stream's ``entries-added`` counter against the entries this node read), ``gaps``
  counts it and ``bus.replay_gap`` is logged: retention (``bus.maxlen``) bounds how long an outage
  can be replayed.
* The first connection fails loud (:class:`BusUnavailable` naming ``bus.url``); later
  losses heal quietly (logged).

A new node starts at the stream's current end (it does not replay history it never saw). With
``resume=True`` (a configured, stable ``cluster.node_id``) the read position is kept in Redis
(``<stream>:cursor:<node_id>``, saved every ``cursor_every`` s and at close) and a restarted
node replays from it: what was published while it was down reaches its subscribers.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from cti.bus.memory import InMemoryBus, Overflow, Subscription
from cti.cancel import cancel_and_wait

log = structlog.get_logger(__name__)

StreamId = tuple[int, int]


class BusUnavailable(ConnectionError):
    """Redis cannot be reached at start-up (the message names ``bus.url``)."""


def parse_id(sid: str) -> StreamId:
    ms, _, seq = sid.partition("-")
    return int(ms), int(seq or 0)


def redis_client(url: str, *, name: str, socket_timeout: float | None = None) -> aioredis.Redis:
    """A client that does not retry on its own (callers own their backoff) and names its connections."""
    return aioredis.from_url(url, decode_responses=True, client_name=name, socket_connect_timeout=2.0,
                             socket_timeout=socket_timeout, retry=Retry(NoBackoff(), 0), health_check_interval=0)


class RedisBus:
    def __init__(self, url: str, *, node_id: str, stream: str = "cti:events", maxlen: int = 100_000,
                 block_ms: int = 1000, batch: int = 500, outbox_max: int = 100_000,
                 reconnect_min: float = 0.1, reconnect_max: float = 5.0, resume: bool = False,
                 cursor_every: float = 1.0) -> None:
        self.url = url
        #: a stable node id: keep the read position in Redis and, after a restart, replay from it
        self.resume = resume
        self.cursor_key = f"{stream}:cursor:{node_id}"
        self.cursor_every = cursor_every
        self._cursor_saved = (0.0, "")
        self.node_id = node_id
        self.stream = stream
        self.maxlen = maxlen
        self.block_ms = block_ms
        self.batch = batch
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self._local = InMemoryBus()
        self._outbox: deque[dict[str, str]] = deque()
        self.outbox_max = outbox_max
        self._outbox_event = asyncio.Event()
        self._epoch = str(time.time_ns())
        self._seq = 0
        #: origin -> (epoch, highest sequence delivered): drops a publisher's retried XADD
        self._seen: dict[str, tuple[str, int]] = {}
        self.last_id = "0-0"
        #: entries appended to the stream up to ``last_id`` (None: unknown, no gap detection)
        self._entries_read: int | None = None
        self._reader: aioredis.Redis | None = None
        self._writer: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.closed = False
        self.connected = asyncio.Event()
        # counters
        self.published = 0
        self.appended = 0
        self.delivered_remote = 0
        self.duplicates = 0
        self.outbox_dropped = 0
        self.reconnects = 0
        self.gaps = 0

    # -- EventBus ----------------------------------------------------------------------
    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        if self.closed:
            return
        self.published += 1
        self._local.publish(topic, payload)
        self._seq += 1
        if len(self._outbox) >= self.outbox_max:
            self._outbox.popleft()
            self.outbox_dropped += 1
        self._outbox.append({"t": topic, "p": json.dumps(payload, separators=(",", ":"), default=str),
                             "o": self.node_id, "e": self._epoch, "s": str(self._seq)})
        self._outbox_event.set()

    def subscribe(self, *prefixes: str, maxsize: int = 1000, overflow: Overflow = "drop_oldest") -> Subscription:
        return self._local.subscribe(*prefixes, maxsize=maxsize, overflow=overflow)

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self, *, from_id: str | None = None) -> None:
        """Connect (fail loud), position at the stream's end (or ``from_id``), start reader and writer."""
        self._reader = redis_client(self.url, name=f"cti-bus-r:{self.node_id}",
                                    socket_timeout=self.block_ms / 1000 + 5.0)
        self._writer = redis_client(self.url, name=f"cti-bus-w:{self.node_id}", socket_timeout=5.0)
        try:
            await self._writer.ping()
            if from_id is None and self.resume:
                saved = await self._reader.get(self.cursor_key)
                if saved:
                    from_id, _, count = saved.partition("|")
                    self._entries_read = int(count) if count else None
            if from_id is None:
                try:  # one command: the end of the stream and how many entries led up to it
                    info = await self._reader.xinfo_stream(self.stream)
                    from_id, self._entries_read = info["last-generated-id"], int(info["entries-added"])
                except aioredis.ResponseError:  # no stream yet
                    from_id, self._entries_read = "0-0", 0
        except (RedisError, OSError) as exc:
            await self._close_clients()
            raise BusUnavailable(f"bus.url: cannot reach Redis at {self.url}: {exc}") from None
        self.last_id = from_id
        self.connected.set()
        self._tasks = [asyncio.create_task(self._read_loop(), name="bus-redis-reader"),
                       asyncio.create_task(self._write_loop(), name="bus-redis-writer")]
        log.info("bus.redis_started", stream=self.stream, node_id=self.node_id, from_id=from_id)

    async def close(self, *, flush_timeout: float = 1.0) -> None:
        """Stop; messages still in the outbox get ``flush_timeout`` seconds to reach Redis."""
        if self.closed:
            return
        self.closed = True
        if self._outbox and self._tasks:
            deadline = time.monotonic() + flush_timeout
            while self._outbox and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        started = bool(self._tasks)
        self._outbox_event.set()  # an idle writer wakes, sees ``closed`` and ends
        await asyncio.gather(*(cancel_and_wait(t) for t in self._tasks))
        self._tasks.clear()
        if started and self.resume:
            try:
                await asyncio.wait_for(self._save_cursor(), flush_timeout)
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                log.warning("bus.cursor_not_saved", error=str(exc))
        await self._close_clients()
        await self._local.close()

    async def _close_clients(self) -> None:
        for c in (self._reader, self._writer):
            if c is not None:
                try:
                    await c.aclose()
                except Exception:  # noqa: BLE001 - closing a broken client
                    pass

    def _backoff(self, attempt: int) -> float:
        delay = min(self.reconnect_max, self.reconnect_min * (2 ** min(attempt, 16)))
        return delay * random.uniform(0.5, 1.0)

    # -- writer ------------------------------------------------------------------------
    async def _write_loop(self) -> None:
        assert self._writer is not None
        failures = 0
        while True:
            if not self._outbox:
                if self.closed:  # closing: what was published before close() has been sent
                    return
                self._outbox_event.clear()
                await self._outbox_event.wait()
                continue
            chunk = [self._outbox[i] for i in range(min(self.batch, len(self._outbox)))]
            try:
                pipe = self._writer.pipeline(transaction=False)
                for fields in chunk:
                    pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
                await pipe.execute()
            except (RedisError, OSError) as exc:
                failures += 1
                if failures == 1:
                    log.warning("bus.redis_write_failed", error=str(exc), outbox=len(self._outbox))
                await asyncio.sleep(self._backoff(failures))
                continue
            if failures:
                log.info("bus.redis_write_resumed", after_failures=failures)
                failures = 0
            # publish() may have dropped the oldest entries meanwhile: remove exactly what was sent
            for fields in chunk:
                if self._outbox and self._outbox[0] is fields:
                    self._outbox.popleft()
            self.appended += len(chunk)

    # -- reader ------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        assert self._reader is not None
        failures = 0
        while not self.closed:
            try:
                if failures:
                    await self._check_gap()
                resp = await self._reader.xread({self.stream: self.last_id}, count=self.batch, block=self.block_ms)
            except (RedisError, OSError, ValueError) as exc:
                failures += 1
                if failures == 1:
                    self.connected.clear()
                    log.warning("bus.redis_read_lost", error=str(exc), last_id=self.last_id)
                await asyncio.sleep(self._backoff(failures))
                continue
            if failures:
                self.reconnects += 1
                self.connected.set()
                log.info("bus.redis_read_resumed", last_id=self.last_id, attempts=failures)
                failures = 0
            for _stream, entries in resp or ():
                for sid, fields in entries:
                    self._deliver(sid, fields)
            if self.resume and time.monotonic() - self._cursor_saved[0] >= self.cursor_every:
                try:
                    await self._save_cursor()
                except (RedisError, OSError) as exc:
                    log.debug("bus.cursor_not_saved", error=str(exc))

    async def _save_cursor(self) -> None:
        """Remember the read position (and the entry count behind it, for gap detection)."""
        assert self._reader is not None
        value = f"{self.last_id}|{'' if self._entries_read is None else self._entries_read}"
        if value != self._cursor_saved[1]:
            await self._reader.set(self.cursor_key, value)
        self._cursor_saved = (time.monotonic(), value)

    async def _check_gap(self) -> None:
        """After an outage: were entries newer than ``last_id`` trimmed before we could read them?"""
        assert self._reader is not None
        try:
            info = await self._reader.xinfo_stream(self.stream)
        except aioredis.ResponseError:  # no stream yet
            return
        if self._entries_read is None:
            return
        first = info.get("first-entry")
        newer = int(info["entries-added"]) - self._entries_read
        # entries newer than last_id still present: all of them if the oldest kept one is newer
        kept = int(info["length"]) if first and parse_id(first[0]) > parse_id(self.last_id) else newer
        if newer > kept:
            self.gaps += 1
            log.warning("bus.replay_gap", last_id=self.last_id, lost=newer - kept, stream=self.stream)

    def _deliver(self, sid: str, fields: dict[str, str]) -> None:
        if parse_id(sid) <= parse_id(self.last_id):
            self.duplicates += 1
            return
        self.last_id = sid
        if self._entries_read is not None:
            self._entries_read += 1
        origin = fields.get("o", "")
        if origin == self.node_id and fields.get("e") == self._epoch:
            return  # delivered locally at publish time (an earlier life of this node: replayed)
        try:
            epoch, seq = fields.get("e", ""), int(fields.get("s", "0"))
            seen = self._seen.get(origin)
            if seen is not None and seen[0] == epoch and seq <= seen[1]:
                self.duplicates += 1
                return
            if seen is None or seen[0] == epoch or epoch > seen[0]:
                self._seen[origin] = (epoch, seq)
            payload = json.loads(fields["p"])
            topic = fields["t"]
        except (KeyError, ValueError) as exc:
            log.warning("bus.bad_entry", id=sid, error=str(exc))
            return
        self.delivered_remote += 1
        self._local.publish(topic, payload)


__all__ = ["BusUnavailable", "RedisBus", "parse_id", "redis_client"]
