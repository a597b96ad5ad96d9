"""The in-process event bus: prefixes, order, bounded queues with explicit overflow."""

from __future__ import annotations

import asyncio

import pytest

from cti.bus import InMemoryBus


async def test_subscribers_get_matching_topics_in_publish_order() -> None:
    bus = InMemoryBus()
    calls = bus.subscribe("call.")
    ringing = bus.subscribe("call.ringing")
    everything = bus.subscribe()
    bus.publish("call.queued", {"n": 1})
    bus.publish("agent.state", {"n": 2})
    bus.publish("call.ringing", {"n": 3})
    assert [m.payload["n"] for m in (calls.get_nowait(), calls.get_nowait())] == [1, 3]
    assert calls.get_nowait() is None
    assert (await ringing.get()).topic == "call.ringing"
    assert [everything.get_nowait().topic for _ in range(3)] == ["call.queued", "agent.state", "call.ringing"]


async def test_publish_never_blocks_and_drop_oldest_keeps_the_newest() -> None:
    bus = InMemoryBus()
    sub = bus.subscribe("agent.", maxsize=3)
    for i in range(10):
        bus.publish("agent.state", {"i": i})
    assert [sub.get_nowait().payload["i"] for _ in range(3)] == [7, 8, 9]
    assert sub.dropped == 7


async def test_drop_newest_keeps_the_oldest() -> None:
    bus = InMemoryBus()
    sub = bus.subscribe("q", maxsize=2, overflow="drop_newest")
    for i in range(5):
        bus.publish("queue.changed", {"i": i})
    assert [sub.get_nowait().payload["i"] for _ in range(2)] == [0, 1] and sub.dropped == 3


async def test_close_policy_cuts_off_a_slow_subscriber_only() -> None:
    bus = InMemoryBus()
    slow = bus.subscribe("call.", maxsize=2, overflow="close")
    fast = bus.subscribe("call.", maxsize=100)
    for i in range(3):
        bus.publish("call.ringing", {"i": i})
    assert slow.closed and len(fast) == 3
    assert [m.payload["i"] async for m in slow] == [0, 1]  # drains what it had, then ends
    bus.publish("call.ringing", {"i": 3})
    assert len(fast) == 4


async def test_waiting_iterator_wakes_on_publish_and_ends_on_bus_close() -> None:
    bus = InMemoryBus()
    sub = bus.subscribe("ami.")

    async def collect() -> list[str]:
        return [m.payload["state"] async for m in sub]

    task = asyncio.create_task(collect())
    await asyncio.sleep(0)
    bus.publish("ami.link", {"state": "connected"})
    await asyncio.sleep(0)
    await bus.close()
    assert await asyncio.wait_for(task, 1) == ["connected"]
    bus.publish("ami.link", {"state": "ignored"})  # after close: a no-op, not an error


async def test_unsubscribe_with_context_manager() -> None:
    bus = InMemoryBus()
    with bus.subscribe("call.") as sub:
        bus.publish("call.ended", {})
    bus.publish("call.ended", {})
    assert len(sub) == 1 and sub.closed


def test_bad_arguments_are_refused() -> None:
    bus = InMemoryBus()
    with pytest.raises(ValueError):
        bus.subscribe("x", maxsize=0)
    with pytest.raises(ValueError):
        bus.subscribe("x", overflow="block")  # type: ignore[arg-type]
