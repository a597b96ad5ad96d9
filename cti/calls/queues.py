"""Queue state: who is waiting (join time, position, queue priority), counters, longest wait."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cti.ami import events as ev

Change = tuple[str, dict[str, Any]]


@dataclass
class Waiting:
    uniqueid: str
    joined_at: float
    position: int
    caller_number: str = ""
    caller_name: str = ""
    #: queue priority when known (QueueEntry at resync, or the FastAGI decision)
    priority: int | None = None

    def to_dict(self, now: float) -> dict[str, Any]:
        return {"uniqueid": self.uniqueid, "joined_at": self.joined_at, "wait_s": max(0.0, now - self.joined_at),
                "position": self.position, "caller_number": self.caller_number,
                "caller_name": self.caller_name, "priority": self.priority}


@dataclass
class Queue:
    server: str
    name: str
    strategy: str = ""
    waiting: dict[str, Waiting] = field(default_factory=dict)
    #: counters since cti started watching (Asterisk's own are in ``asterisk``)
    joined: int = 0
    answered: int = 0
    abandoned: int = 0
    asterisk: dict[str, int] = field(default_factory=dict)

    def longest_wait(self, now: float) -> float:
        if not self.waiting:
            return 0.0
        return max(0.0, now - min(w.joined_at for w in self.waiting.values()))

    def snapshot(self, now: float) -> dict[str, Any]:
        return {
            "server": self.server,
            "queue": self.name,
            "strategy": self.strategy,
            "waiting": [w.to_dict(now) for w in sorted(self.waiting.values(), key=lambda w: w.position)],
            "waiting_count": len(self.waiting),
            "longest_wait_s": self.longest_wait(now),
            "joined": self.joined,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "asterisk": dict(self.asterisk),
        }


class QueueBoard:
    def __init__(self, server: str = "default") -> None:
        self.server = server
        self.queues: dict[str, Queue] = {}

    def get(self, name: str) -> Queue | None:
        return self.queues.get(name)

    def _queue(self, name: str) -> Queue:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = Queue(self.server, name)
        return q

    def apply(self, e: object, now: float) -> list[Change]:
        t = type(e)
        if t is ev.QueueCallerJoin:
            q = self._queue(e.queue)  # type: ignore[attr-defined]
            q.waiting.pop(e.uniqueid, None)  # type: ignore[attr-defined]
            for w in q.waiting.values():  # a higher priority joins ahead: the others move down
                if w.position >= e.position:  # type: ignore[attr-defined]
                    w.position += 1
            q.waiting[e.uniqueid] = Waiting(e.uniqueid, now, e.position, e.caller_number, e.caller_name)  # type: ignore[attr-defined]
            q.joined += 1
            return self._changed(q, now)
        if t is ev.QueueCallerLeave:
            q = self.queues.get(e.queue)  # type: ignore[attr-defined]
            if q is None or not self._remove(q, e.uniqueid):  # type: ignore[attr-defined]
                return []
            return self._changed(q, now)
        if t is ev.QueueCallerAbandon:
            q = self._queue(e.queue)  # type: ignore[attr-defined]
            q.abandoned += 1
            return []
        if t is ev.AgentConnect:
            q = self._queue(e.queue)  # type: ignore[attr-defined]
            q.answered += 1
            self._remove(q, e.uniqueid)  # type: ignore[attr-defined]
            return []
        if t is ev.Hangup:
            out: list[Change] = []
            for q in self.queues.values():
                if self._remove(q, e.uniqueid):  # type: ignore[attr-defined]
                    out += self._changed(q, now)
            return out
        return []

    @staticmethod
    def _remove(q: Queue, uniqueid: str) -> bool:
        gone = q.waiting.pop(uniqueid, None)
        if gone is None:
            return False
        for w in q.waiting.values():  # Asterisk closes the gap
            if w.position > gone.position:
                w.position -= 1
        return True

    def _changed(self, q: Queue, now: float) -> list[Change]:
        oldest = min((w.joined_at for w in q.waiting.values()), default=None)
        return [("queue.changed", {"server": q.server, "queue": q.name, "waiting_count": len(q.waiting),
                                   "oldest_joined_at": oldest, "at": now})]

    def resync(self, params: list[ev.QueueParams], entries: list[ev.QueueEntry], now: float) -> list[Change]:
        """Replace the waiting lists with ``QueueStatus``'s entries (join time = now - Wait)."""
        old = self.queues
        self.queues = {}
        for p in params:
            q = self._queue(p.queue)
            prev = old.get(p.queue)
            if prev is not None:
                q.joined, q.answered, q.abandoned = prev.joined, prev.answered, prev.abandoned
            q.strategy = p.strategy
            q.asterisk = {"calls": p.calls, "holdtime": p.holdtime, "talktime": p.talktime,
                          "completed": p.completed, "abandoned": p.abandoned, "weight": p.weight}
        for e in entries:
            q = self._queue(e.queue)
            prev_w = old.get(e.queue).waiting.get(e.uniqueid) if e.queue in old else None
            joined = prev_w.joined_at if prev_w is not None else now - e.wait
            q.waiting[e.uniqueid] = Waiting(e.uniqueid, joined, e.position, e.caller_number, e.caller_name, e.priority)
        out: list[Change] = []
        for q in self.queues.values():
            out += self._changed(q, now)
        return out
