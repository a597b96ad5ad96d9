"""Event bus: in-process (:class:`InMemoryBus`) or across nodes on Redis Streams (:class:`RedisBus`),
behind one interface; :func:`create_bus` chooses by ``bus.url``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cti.bus.memory import BusMessage, EventBus, InMemoryBus, Overflow, Subscription

if TYPE_CHECKING:
    from cti.config import BusConfig


def create_bus(config: "BusConfig", node_id: str, *, resume: bool = False) -> EventBus:
    """``memory://`` -> InMemoryBus; ``redis://…`` -> RedisBus (call ``await bus.start()`` before use).

    ``resume``: the node id is stable (configured): after a restart, replay from where it stopped."""
    if config.url == "memory://":
        return InMemoryBus()
    from cti.bus.redis import RedisBus

    return RedisBus(config.url, node_id=node_id, stream=config.stream, maxlen=config.maxlen, resume=resume)


__all__ = ["BusMessage", "EventBus", "InMemoryBus", "Overflow", "Subscription", "create_bus"]
