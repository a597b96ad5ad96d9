"""In-process event bus: topics, prefix subscriptions, bounded queues.

The interface (:class:`EventBus`) is deliberately narrow so a Redis backend can replace
this one: ``publish(topic, payload)`` never blocks and never raises on a slow consumer;
``subscribe(*prefixes, maxsize=, overflow=)`` returns an async iterator of
:class:`BusMessage`; ``close()`` ends every subscription.

Overflow policy (per subscription, explicit): ``"drop_oldest"`` (default: a live view
wants the newest state), ``"drop_newest"``, or ``"close"`` (the subscriber is cut off and
its iterator ends; a websocket hub then drops the slow client). Drops are counted.
Payloads are plain JSON-able dicts, shared (not copied) between subscribers: treat them
as read-only.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Literal, Protocol

import structlog

log = structlog.get_logger(__name__)

Overflow = Literal["drop_oldest", "drop_newest", "close"]


@dataclass(frozen=True, slots=True)
class BusMessage:
    topic: str
    payload: dict[str, Any]
    #: wall-clock time of publication (epoch seconds)
    at: float = field(default_factory=time.time)


class EventBus(Protocol):
    def publish(self, topic: str, payload: dict[str, Any]) -> None: ...

    def subscribe(self, *prefixes: str, maxsize: int = 1000, overflow: Overflow = "drop_oldest") -> "Subscription": ...

    async def close(self) -> None: ...


class Subscription:
    """A bounded queue of messages whose topic starts with one of ``prefixes``."""

    def __init__(self, bus: "InMemoryBus", prefixes: tuple[str, ...], maxsize: int, overflow: Overflow) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        if overflow not in ("drop_oldest", "drop_newest", "close"):
            raise ValueError(f"unknown overflow policy {overflow!r}")
        self._bus = bus
        self.prefixes = prefixes
        self.maxsize = maxsize
        self.overflow = overflow
        self._items: deque[BusMessage] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.dropped = 0

    def matches(self, topic: str) -> bool:
        return not self.prefixes or topic.startswith(self.prefixes)

    def _put(self, msg: BusMessage) -> None:
        if self.closed:
            return
        if len(self._items) >= self.maxsize:
            self.dropped += 1
            if self.overflow == "drop_newest":
                return
            if self.overflow == "close":
                log.warning("bus.subscriber_overflow_closed", prefixes=self.prefixes, maxsize=self.maxsize)
                self.close()
                return
            self._items.popleft()
        self._items.append(msg)
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def get_nowait(self) -> BusMessage | None:
        return self._items.popleft() if self._items else None

    async def get(self) -> BusMessage:
        """The next message; raises :class:`StopAsyncIteration` once closed and drained."""
        while not self._items:
            if self.closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def __aiter__(self) -> AsyncIterator[BusMessage]:
        return self

    async def __anext__(self) -> BusMessage:
        return await self.get()

    def __len__(self) -> int:
        return len(self._items)

    def close(self) -> None:
        """Stop receiving; pending messages can still be read, then iteration ends."""
        if not self.closed:
            self.closed = True
            self._bus._remove(self)
            self._wake()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InMemoryBus:
    """The single-process implementation of :class:`EventBus`."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self.closed = False
        self.published = 0

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        if self.closed:
            return
        self.published += 1
        if not self._subs:
            return
        msg = BusMessage(topic, payload)
        for sub in tuple(self._subs):
            if sub.matches(topic):
                sub._put(msg)

    def subscribe(self, *prefixes: str, maxsize: int = 1000, overflow: Overflow = "drop_oldest") -> Subscription:
        sub = Subscription(self, tuple(prefixes), maxsize, overflow)
        if self.closed:
            sub.closed = True
        else:
            self._subs.append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        try:
            self._subs.remove(sub)
        except ValueError:
            pass

    async def close(self) -> None:
        self.closed = True
        for sub in tuple(self._subs):
            sub.close()
