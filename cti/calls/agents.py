"""Agent state machine: by queue-member interface (``Interface``/``MemberName``), never by exten.

An agent is logged in while it is a member of at least one queue. Its state, derived:

* ``on_call``: connected to a queue caller (``AgentConnect``), or Asterisk says ``InCall``;
* ``ringing``: ``AgentCalled`` and not yet answered / no-answer / caller gone;
* ``wrap_up``: within the member's ``Wrapuptime`` after ``AgentComplete``;
* ``paused``: paused in every queue it is in (``paused_reason`` from Asterisk);
* ``unavailable``: its device is unavailable/invalid in every queue (status 4/5);
* ``ready``: otherwise; ``logged_out`` once it is in no queue (it then leaves the board).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cti.ami import events as ev

Change = tuple[str, dict[str, Any]]

#: app_queue member status (device state) numbers
DEVICE_STATUS = {0: "unknown", 1: "not_in_use", 2: "in_use", 3: "busy", 4: "invalid",
                 5: "unavailable", 6: "ringing", 7: "ringinuse", 8: "onhold"}


@dataclass
class Membership:
    queue: str
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""
    membership: str = ""
    status: int = 0
    in_call: bool = False
    calls_taken: int = 0
    wrapup_time: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"queue": self.queue, "penalty": self.penalty, "paused": self.paused,
                "paused_reason": self.paused_reason, "membership": self.membership,
                "status": DEVICE_STATUS.get(self.status, str(self.status)), "in_call": self.in_call,
                "calls_taken": self.calls_taken}


@dataclass
class Agent:
    server: str
    interface: str
    name: str
    memberships: dict[str, Membership] = field(default_factory=dict)
    #: caller uniqueid -> queue, while this agent's phone rings for it
    ringing: dict[str, str] = field(default_factory=dict)
    on_call: str | None = None
    on_call_queue: str | None = None
    wrapup_until: float | None = None
    last_state: str = ""

    @property
    def paused(self) -> bool:
        return bool(self.memberships) and all(m.paused for m in self.memberships.values())

    @property
    def paused_reason(self) -> str:
        for m in self.memberships.values():
            if m.paused and m.paused_reason:
                return m.paused_reason
        return ""

    def state(self, now: float) -> str:
        if not self.memberships:
            return "logged_out"
        if self.on_call or any(m.in_call for m in self.memberships.values()):
            return "on_call"
        if self.ringing:
            return "ringing"
        if self.wrapup_until is not None and now < self.wrapup_until:
            return "wrap_up"
        if self.paused:
            return "paused"
        if all(m.status in (4, 5) for m in self.memberships.values()):
            return "unavailable"
        return "ready"

    def snapshot(self, now: float) -> dict[str, Any]:
        return {
            "server": self.server,
            "interface": self.interface,
            "name": self.name,
            "state": self.state(now),
            "paused": self.paused,
            "paused_reason": self.paused_reason,
            "queues": {q: m.to_dict() for q, m in sorted(self.memberships.items())},
            "ringing": sorted(self.ringing),
            "on_call": self.on_call,
            "wrapup_until": self.wrapup_until,
        }


class AgentBoard:
    def __init__(self, server: str = "default") -> None:
        self.server = server
        self.agents: dict[str, Agent] = {}

    def by_interface(self, interface: str) -> Agent | None:
        return self.agents.get(interface)

    def in_queue(self, queue: str) -> list[Agent]:
        return [a for a in self.agents.values() if queue in a.memberships]

    def apply(self, e: object, now: float) -> list[Change]:
        t = type(e)
        if t is ev.AgentCalled:
            return self._ring(e, now)  # type: ignore[arg-type]
        if t is ev.AgentRingNoAnswer:
            a = self.agents.get(e.interface)  # type: ignore[attr-defined]
            if a is None or a.ringing.pop(e.uniqueid, None) is None:  # type: ignore[attr-defined]
                return []
            return self._changed(a, now)
        if t is ev.AgentConnect:
            return self._connect(e, now)  # type: ignore[arg-type]
        if t is ev.AgentComplete:
            return self._complete(e, now)  # type: ignore[arg-type]
        if t is ev.QueueCallerAbandon or t is ev.Hangup:
            # (not at QueueCallerLeave: the answering agent's ring ends at the AgentConnect that follows it)
            return self._caller_gone(e.uniqueid, now)  # type: ignore[attr-defined]
        if isinstance(e, ev.QueueMemberEvent):
            return self._member(e, now)
        return []

    # -- handlers ------------------------------------------------------------------
    def _agent(self, interface: str, name: str) -> Agent:
        a = self.agents.get(interface)
        if a is None:
            a = self.agents[interface] = Agent(self.server, interface, name or interface)
        elif name and a.name != name:
            a.name = name
        return a

    def _ring(self, e: ev.AgentCalled, now: float) -> list[Change]:
        a = self.agents.get(e.interface)
        if a is None:
            a = self._agent(e.interface, e.member_name)
        a.ringing[e.uniqueid] = e.queue
        return self._changed(a, now)

    def _connect(self, e: ev.AgentConnect, now: float) -> list[Change]:
        changes: list[Change] = []
        for other in self.agents.values():
            if other.interface != e.interface and other.ringing.pop(e.uniqueid, None) is not None:
                changes += self._changed(other, now)
        a = self._agent(e.interface, e.member_name)
        a.ringing.pop(e.uniqueid, None)
        a.on_call = e.uniqueid
        a.on_call_queue = e.queue
        a.wrapup_until = None
        return changes + self._changed(a, now)

    def _complete(self, e: ev.AgentComplete, now: float) -> list[Change]:
        a = self.agents.get(e.interface)
        if a is None or a.on_call != e.uniqueid:
            return []
        a.on_call = None
        m = a.memberships.get(e.queue)
        wrap = m.wrapup_time if m else 0
        a.wrapup_until = now + wrap if wrap > 0 else None
        return self._changed(a, now)

    def _caller_gone(self, uniqueid: str, now: float) -> list[Change]:
        changes: list[Change] = []
        for a in self.agents.values():
            if uniqueid in a.ringing:
                del a.ringing[uniqueid]
                changes += self._changed(a, now)
            if a.on_call == uniqueid:
                a.on_call = None
                changes += self._changed(a, now)
        return changes

    def _member(self, e: ev.QueueMemberEvent, now: float) -> list[Change]:
        if isinstance(e, ev.QueueMemberRemoved):
            a = self.agents.get(e.interface)
            if a is None or a.memberships.pop(e.queue, None) is None:
                return []
            changes = self._changed(a, now)
            if not a.memberships and not a.on_call:
                del self.agents[e.interface]
            return changes
        a = self._agent(e.interface, e.member_name)
        m = a.memberships.get(e.queue)
        if m is None:
            m = a.memberships[e.queue] = Membership(e.queue)
        m.penalty = e.penalty
        m.paused = e.paused
        m.paused_reason = e.paused_reason if e.paused else ""
        m.membership = e.membership or m.membership
        m.status = e.status
        m.in_call = e.in_call
        m.calls_taken = e.calls_taken
        m.wrapup_time = e.wrapup_time
        return self._changed(a, now)

    def _changed(self, a: Agent, now: float) -> list[Change]:
        snap = a.snapshot(now)
        a.last_state = snap["state"]
        snap["at"] = now
        return [("agent.state", snap)]

    # -- resync --------------------------------------------------------------------
    def resync(self, members: list[ev.QueueMemberEvent], live_uniqueids: set[str], now: float) -> list[Change]:
        """Replace every membership with the ``QueueStatus`` list: no stale agent survives."""
        old = self.agents
        self.agents = {}
        for m in members:
            self._member(m, now)
        changes: list[Change] = []
        for iface, a in self.agents.items():
            prev = old.get(iface)
            if prev is not None:
                a.ringing = {u: q for u, q in prev.ringing.items() if u in live_uniqueids}
                if prev.on_call and prev.on_call in live_uniqueids:
                    a.on_call, a.on_call_queue = prev.on_call, prev.on_call_queue
                a.wrapup_until = prev.wrapup_until
            # Asterisk does not list who rings: a ring in progress ends at resync.
            a.ringing.clear()
            changes += self._changed(a, now)
        for iface, prev in old.items():
            if iface not in self.agents:
                prev.memberships.clear()
                prev.ringing.clear()
                prev.on_call = None
                changes += self._changed(prev, now)
        return changes
