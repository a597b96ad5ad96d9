"""Outbound follow-ups in the console's web app: the dialing agent's console websocket gets
``outbound.dialing`` (the follow-up "pop": customer, reasons, number, attempt id, while the
agent's phone rings) and ``outbound.dial_result`` (connected / failed), as ``notification``
frames ``{type: "notification", topic, ...payload}`` through
:meth:`cti.web.notifications.ConsoleNotifications.deliver` (the hub's per-account clients).

The REST routes themselves are :func:`cti.outbound.http.add_routes`, mounted by cti/web/server.py
with the daemon's one :class:`~cti.outbound.service.OutboundService` (the daemon runs its scheduler).
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import structlog
from aiohttp import web

from cti.outbound.service import OUTBOUND_DIAL_RESULT, OUTBOUND_DIALING
from cti.web.backoffice import NOTIFICATIONS
from cti.web.notifications import ConsoleNotifications

log = structlog.get_logger(__name__)

FORWARDED = (OUTBOUND_DIALING, OUTBOUND_DIAL_RESULT)


class OutboundForwarder:
    """Bus ``outbound.dialing`` / ``outbound.dial_result`` -> the console of the payload's ``agent_id``."""

    def __init__(self, bus: Any, notifications: ConsoleNotifications) -> None:
        self.bus = bus
        self.notifications = notifications
        self.sent = 0
        self._sub: Any = None
        self._task: asyncio.Task[None] | None = None

    def dispatch(self, topic: str, payload: dict[str, Any]) -> int:
        agent_id = payload.get("agent_id")
        if topic not in FORWARDED or isinstance(agent_id, bool) or not isinstance(agent_id, int):
            return 0
        n = self.notifications.deliver(topic, payload, [agent_id])
        self.sent += n
        return n

    async def _run(self) -> None:
        async for msg in self._sub:
            try:
                n = self.dispatch(msg.topic, msg.payload)
                log.info("outbound.console_notified", topic=msg.topic, attempt_id=msg.payload.get("attempt_id"),
                         followup_id=msg.payload.get("followup_id"), delivered=n)
            except Exception:
                log.exception("outbound.console_notify_failed", topic=msg.topic)

    async def start(self) -> None:
        self._sub = self.bus.subscribe(*FORWARDED, maxsize=10_000)
        self._task = asyncio.create_task(self._run(), name="outbound-console")

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def forward_outbound(app: web.Application, bus: Any, hub: Any) -> OutboundForwarder:
    """Run an :class:`OutboundForwarder` with the app (uses the backoffice's notifications if mounted)."""
    notifications = app[NOTIFICATIONS] if NOTIFICATIONS in app else ConsoleNotifications(bus, hub)
    forwarder = OutboundForwarder(bus, notifications)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await forwarder.start()
        yield
        await forwarder.stop()

    app.cleanup_ctx.append(lifecycle)
    return forwarder
