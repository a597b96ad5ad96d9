"""OutboundScheduler: the bus side of follow-ups, owned by the composition root.

Consumes ``call.originate_result`` (dial outcomes), ``ticket.updated`` (a resolved ticket fires
the ``ticket.resolved`` rules), ``call.wrapped_up`` with disposition ``follow_up`` (the
``call.callback_requested`` rules) and ``outbound.event`` ({kind, customer_id, key, detail?}:
repairs and purchases reported by other systems); every ``interval`` seconds it fails dials the
PBX never confirmed so their follow-ups can be dialed again.

    sched = OutboundScheduler(service, bus)
    await sched.start(); ...; await sched.stop()
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import structlog
from sqlalchemy import select

from cti.db.tables import calls
from cti.outbound.rules import BusinessEvent, ticket_event
from cti.outbound.service import OutboundService

log = structlog.get_logger(__name__)

TOPICS = ("call.originate_result", "ticket.updated", "call.wrapped_up", "outbound.event")


def _at(payload: dict[str, Any], default: datetime) -> datetime:
    """When the event happened (the payload's epoch ``at``), not when the bus delivered it."""
    at = payload.get("at")
    return datetime.fromtimestamp(float(at), timezone.utc) if isinstance(at, (int, float)) else default


class OutboundScheduler:
    def __init__(self, service: OutboundService, bus: Any, *, interval: float = 30.0) -> None:
        self.svc = service
        self.bus = bus
        self.interval = interval
        self._tasks: list[asyncio.Task[Any]] = []
        self._sub: Any = None
        self.errors = 0

    async def start(self) -> None:
        self._sub = self.bus.subscribe(*TOPICS, maxsize=10_000, overflow="drop_newest")
        self._tasks = [asyncio.create_task(self._consume(), name="outbound-events"),
                       asyncio.create_task(self._sweep(), name="outbound-sweep")]

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()

    async def _consume(self) -> None:
        async for msg in self._sub:
            try:
                await self.handle(msg.topic, msg.payload)
            except Exception:
                self.errors += 1
                log.exception("outbound.event_error", topic=msg.topic)

    async def handle(self, topic: str, payload: dict[str, Any]) -> None:
        if topic == "call.originate_result":
            await self.svc.on_originate_result(payload)
        elif topic == "ticket.updated":
            event = ticket_event(payload, self.svc.now())
            if event is not None:
                await self.svc.handle_event(event)
        elif topic == "call.wrapped_up":
            if payload.get("disposition") == "follow_up":
                customer_id = await self._customer_of_call(payload.get("server") or "default", payload.get("uniqueid"))
                if customer_id is not None:
                    await self.svc.handle_event(BusinessEvent("call.callback_requested", customer_id,
                                                              f"{payload.get('server')}:{payload.get('uniqueid')}",
                                                              _at(payload, self.svc.now()), "asked during an inbound call"))
        elif topic == "outbound.event":
            await self.svc.handle_event(BusinessEvent(str(payload["kind"]), int(payload["customer_id"]),
                                                      str(payload["key"]), _at(payload, self.svc.now()),
                                                      str(payload.get("detail", ""))))

    async def _customer_of_call(self, server: str, uniqueid: Any) -> int | None:
        if not uniqueid:
            return None
        async with self.svc.sm() as session:
            return (await session.execute(select(calls.c.customer_id).where(
                calls.c.server == server, calls.c.uniqueid == str(uniqueid)))).scalar_one_or_none()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.svc.release_stale()
            except Exception:
                self.errors += 1
                log.exception("outbound.sweep_error")
