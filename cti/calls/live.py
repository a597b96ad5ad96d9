"""The live state of one PBX: calls, agents and queues, fed in arrival order.

Pure: ``apply(event, now)`` and ``resync(items, now)`` return the bus messages to
publish, as ``(topic, payload)`` pairs; nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from typing import Any, Iterable

from cti.ami import events as ev
from cti.calls.agents import AgentBoard
from cti.calls.queues import QueueBoard
from cti.calls.tracker import CallTracker

Change = tuple[str, dict[str, Any]]


class LiveState:
    def __init__(self, server: str = "default") -> None:
        self.server = server
        self.calls = CallTracker(server)
        self.agents = AgentBoard(server)
        self.queues = QueueBoard(server)
        #: Uptime of the last FullyBooted (0 = the PBX just restarted)
        self.pbx_uptime: int | None = None
        self.pbx_restarts = 0
        self.applied = 0

    def apply(self, e: object, now: float) -> list[Change]:
        """Apply one normalized event; returns the resulting bus messages."""
        self.applied += 1
        changes = self.calls.apply(e, now)
        t = type(e)
        if t is ev.Newchannel or t is ev.DeviceStateChange or t is ev.OriginateResponse:
            return changes
        changes += self.queues.apply(e, now)
        changes += self.agents.apply(e, now)
        if t is ev.QueueCallerJoin:
            call = self.calls.get(e.uniqueid, e.server)  # type: ignore[attr-defined]
            q = self.queues.get(e.queue)  # type: ignore[attr-defined]
            if call is not None and q is not None and e.uniqueid in q.waiting:  # type: ignore[attr-defined]
                q.waiting[e.uniqueid].priority = call.priority  # type: ignore[attr-defined]
        elif t is ev.FullyBooted:
            self.pbx_uptime = e.uptime  # type: ignore[attr-defined]
            if e.uptime == 0:  # type: ignore[attr-defined]
                self.pbx_restarts += 1
                changes.append(("ami.pbx_restarted", {"server": self.server, "at": now}))
        return changes

    def note_decision(self, payload: dict[str, Any], now: float | None = None) -> list[Change]:
        """Attach an ``agi.decision`` bus payload to its call."""
        uniqueid = payload.get("uniqueid")
        if not uniqueid:
            return []
        at = payload.get("at") or now or 0.0
        server = payload.get("server") or self.server
        fields = {k: v for k, v in payload.items() if k not in ("uniqueid", "at", "server")}
        if fields.get("priority") is not None:
            try:
                fields["priority"] = int(fields["priority"])
            except (TypeError, ValueError):
                fields["priority"] = None
        changes = self.calls.note_decision(uniqueid, at=float(at), server=server, **fields)
        call = self.calls.get(uniqueid, server)
        if call is not None and call.queue:
            q = self.queues.get(call.queue)
            quid = call.queue_uniqueid or uniqueid
            if q is not None and quid in q.waiting:
                q.waiting[quid].priority = call.priority
        return changes

    def resync(self, items: Iterable[object], now: float) -> list[Change]:
        """Rebuild from ``QueueStatus`` + ``CoreShowChannels`` list items: no stale agent, no ghost call."""
        params: list[ev.QueueParams] = []
        members: list[ev.QueueMemberEvent] = []
        entries: list[ev.QueueEntry] = []
        channels: list[ev.CoreShowChannel] = []
        for it in items:
            if isinstance(it, ev.QueueParams):
                params.append(it)
            elif isinstance(it, ev.QueueMemberEvent):
                members.append(it)
            elif isinstance(it, ev.QueueEntry):
                entries.append(it)
            elif isinstance(it, ev.CoreShowChannel):
                channels.append(it)
        live = {c.uniqueid for c in channels} | {e.uniqueid for e in entries}
        self.calls.channels = {c.uniqueid: (now - c.duration_s, c.linkedid, c.channel) for c in channels}
        changes = self.calls.reconcile(live, {e.uniqueid: e for e in entries}, now)
        changes += self.queues.resync(params, entries, now)
        # answered calls still up keep their agent on call
        on_call = {}
        for call in self.calls.active():
            if call.state in ("talking", "transferring") and call.agent_interface:
                on_call[call.agent_interface] = call
        changes += self.agents.resync(members, live, now)
        for iface, call in on_call.items():
            a = self.agents.by_interface(iface)
            if a is not None and a.on_call is None:
                a.on_call, a.on_call_queue = call.queue_uniqueid or call.uniqueid, call.queue
        changes.append(("ami.link", {"server": self.server, "state": "resynced", "calls": len(self.calls.calls),
                                     "agents": len(self.agents.agents), "queues": len(self.queues.queues), "at": now}))
        return changes

    def snapshot(self, now: float) -> dict[str, Any]:
        """Everything, JSON-able: ``{"server", "at", "calls": [...], "agents": [...], "queues": [...]}``."""
        return {
            "server": self.server,
            "at": now,
            "calls": [c.snapshot(now) for c in self.calls.active()],
            "agents": [a.snapshot(now) for a in sorted(self.agents.agents.values(), key=lambda a: a.interface)],
            "queues": [self._queue_snapshot(q, now) for q in sorted(self.queues.queues.values(), key=lambda q: q.name)],
        }

    def queue_snapshot(self, name: str, now: float) -> dict[str, Any] | None:
        q = self.queues.get(name)
        return None if q is None else self._queue_snapshot(q, now)

    def _queue_snapshot(self, q: Any, now: float) -> dict[str, Any]:
        snap = q.snapshot(now)
        members = []
        for a in self.agents.in_queue(q.name):
            m = a.memberships[q.name]
            members.append({"interface": a.interface, "name": a.name, "state": a.state(now), "paused": m.paused,
                            "paused_reason": m.paused_reason, "penalty": m.penalty})
        members.sort(key=lambda m: m["interface"])
        snap["members"] = members
        snap["logged_in"] = len(members)
        snap["available"] = sum(1 for m in members if m["state"] == "ready")
        return snap
