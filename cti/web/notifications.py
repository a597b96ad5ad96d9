"""Ticket and knowledge-base events to the console websockets of the agents they are for.

One bus subscription (``ticket.`` and ``kb.``); each event becomes a ``notification`` frame
``{type: "notification", topic, ...payload}`` sent to the named agent(s) through the hub's
clients (one per account, :attr:`PopHub.by_agent_id`). An agent not connected gets nothing
here: the outbox (e-mail/webhook) and the ticket lists are the durable record.

Who gets what (payload fields from :mod:`cti.tickets.topics`):

* ``ticket.created`` -> the owner (unless the owner created it)
* ``ticket.escalated`` -> the new owner and the previous one
* ``ticket.sla_breached`` -> the owner (top of the chain)
* ``ticket.updated`` -> the new owner of an ``assign``; the owner of a ``reopen`` (unless they did it)
* ``kb.question`` / ``kb.question.escalated`` / ``kb.question.sla_breached`` -> the engineer in charge
  (and the previous one for an escalation)
* ``kb.answered``, ``kb.published`` -> the agent who asked
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any, Iterable

import structlog

from cti.tickets import topics

log = structlog.get_logger(__name__)

#: The topics delivered to agents' consoles.
DELIVERED = (
    topics.TICKET_CREATED, topics.TICKET_ESCALATED, topics.TICKET_SLA_BREACHED, topics.TICKET_UPDATED,
    topics.KB_QUESTION, topics.KB_QUESTION_ESCALATED, topics.KB_QUESTION_SLA_BREACHED,
    topics.KB_ANSWERED, topics.KB_PUBLISHED,
)


def _ids(*values: Any) -> list[int]:
    out: list[int] = []
    for v in values:
        if isinstance(v, bool) or v is None:
            continue
        try:
            i = int(v)
        except (TypeError, ValueError):
            continue
        if i not in out:
            out.append(i)
    return out


def recipients(topic: str, p: dict[str, Any]) -> list[int]:
    """The agent ids an event is for (pure)."""
    if topic == topics.TICKET_CREATED:
        return [] if p.get("owner_id") == p.get("created_by") else _ids(p.get("owner_id"))
    if topic in (topics.TICKET_ESCALATED, topics.KB_QUESTION_ESCALATED):
        return _ids(p.get("owner_id"), p.get("from_owner_id"))
    if topic in (topics.TICKET_SLA_BREACHED, topics.KB_QUESTION, topics.KB_QUESTION_SLA_BREACHED):
        return _ids(p.get("owner_id"))
    if topic == topics.TICKET_UPDATED:
        action = p.get("action")
        if action == "assign":
            return _ids(p.get("owner_id"))
        if action == "reopen" and p.get("owner_id") != p.get("actor_id"):
            return _ids(p.get("owner_id"))
        return []
    if topic in (topics.KB_ANSWERED, topics.KB_PUBLISHED):
        return _ids(p.get("asked_by"))
    return []


def frame(topic: str, payload: dict[str, Any]) -> str:
    return json.dumps({**payload, "type": "notification", "topic": topic}, ensure_ascii=False, separators=(",", ":"),
                      default=lambda o: o.isoformat() if isinstance(o, datetime) else str(o))


class ConsoleNotifications:
    """Bus -> the consoles of the agents named in each event. ``start()`` / ``stop()``."""

    def __init__(self, bus: Any, hub: Any) -> None:
        self.bus = bus
        self.hub = hub
        self.sent = 0
        self._sub: Any = None
        self._task: asyncio.Task[None] | None = None

    def deliver(self, topic: str, payload: dict[str, Any], agent_ids: Iterable[int]) -> int:
        """Offer the frame to each connected agent of ``agent_ids``; how many got it."""
        text: str | None = None
        n = 0
        for agent_id in agent_ids:
            # The hub has no public send-to-agent method: its per-account client map is the narrowest hook.
            client = self.hub.by_agent_id.get(agent_id)
            if client is None:
                continue
            text = text or frame(topic, payload)
            if client.offer(text):
                n += 1
        self.sent += n
        return n

    def dispatch(self, topic: str, payload: dict[str, Any]) -> int:
        if topic not in DELIVERED:
            return 0
        return self.deliver(topic, payload, recipients(topic, payload))

    async def _run(self) -> None:
        async for msg in self._sub:
            try:
                n = self.dispatch(msg.topic, msg.payload)
                if n:
                    log.info("console.notified", topic=msg.topic, ticket_id=msg.payload.get("ticket_id"),
                             question_id=msg.payload.get("question_id"), delivered=n)
            except Exception:
                log.exception("console.notify_failed", topic=msg.topic)

    async def start(self) -> None:
        self._sub = self.bus.subscribe("ticket.", "kb.", maxsize=10_000)
        self._task = asyncio.create_task(self._run(), name="console-notifications")

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
