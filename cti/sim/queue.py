"""A pure model of app_queue: queues, members, waiting callers, and who rings next.

No I/O and no clock of its own: every method that depends on time takes ``now`` (epoch seconds,
float). The engine (``cti.sim.pbx``) calls :meth:`QueueSystem.ring_decisions` after every change
and at :meth:`QueueSystem.next_wakeup`, and turns the results into AMI events.

Semantics follow app_queue as configured in ``asterisk-config/queues.conf`` (ringinuse=no,
autofill=yes, shared_lastcall=yes):

- callers are ordered by queue priority (higher first), FIFO within a priority;
- members are tried in penalty tiers: only the lowest penalty among the available members rings;
- strategies: ``ringall`` (every member of the tier), ``rrmemory`` (the next member after the last
  one rung), ``leastrecent`` (longest since the end of its last call), ``fewestcalls``;
- a member is available when not paused, not ringing, not in a call (in any queue), and past
  ``wrapuptime`` seconds since its last call ended;
- a ring that reaches ``timeout`` seconds stops; the caller waits ``retry`` seconds before the
  next attempt (which for rrmemory moves on to the next member).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable, Optional


class Strategy(str, Enum):
    RINGALL = "ringall"
    RRMEMORY = "rrmemory"
    LEASTRECENT = "leastrecent"
    FEWESTCALLS = "fewestcalls"


class QueueError(Exception):
    """An action on the model that app_queue refuses (the message is the AMI error text)."""


# Device states as app_queue reports them in ``Status``.
DEVICE_NOT_INUSE = 1
DEVICE_INUSE = 2
DEVICE_RINGING = 6


@dataclass(frozen=True)
class QueueConfig:
    name: str
    strategy: Strategy = Strategy.RRMEMORY
    timeout: float = 15.0
    retry: float = 2.0
    wrapuptime: float = 0.0
    weight: int = 0
    members: tuple["MemberConfig", ...] = ()


@dataclass(frozen=True)
class MemberConfig:
    interface: str
    name: str
    penalty: int = 0


@dataclass
class Member:
    interface: str
    name: str
    penalty: int = 0
    dynamic: bool = False
    paused: bool = False
    paused_reason: str = ""
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0


@dataclass
class Device:
    """What all queues share about one interface (ringinuse=no, shared_lastcall=yes)."""

    ringing: int = 0
    in_call: bool = False
    last_call_end: float = float("-inf")

    def status(self, interface: str) -> int:
        if self.in_call:
            return DEVICE_INUSE
        if self.ringing:
            # Local/ members go straight from 1 to 2 while ringing (captures); real phones show 6.
            return DEVICE_INUSE if interface.startswith("Local/") else DEVICE_RINGING
        return DEVICE_NOT_INUSE


@dataclass
class WaitingCaller:
    uniqueid: str
    priority: int
    joined: float
    original_position: int
    ringing: tuple[str, ...] = ()
    ring_started: Optional[float] = None
    retry_at: float = float("-inf")


@dataclass(frozen=True)
class Ring:
    """Start ringing ``interfaces`` for caller ``uniqueid`` of ``queue``."""

    queue: str
    uniqueid: str
    interfaces: tuple[str, ...]


@dataclass(frozen=True)
class Connected:
    holdtime: int
    ringtime: int
    position: int
    original_position: int
    count: int
    cancelled: tuple[str, ...]


@dataclass(frozen=True)
class Left:
    position: int
    original_position: int
    holdtime: int
    count: int
    cancelled: tuple[str, ...] = ()


@dataclass
class Queue:
    config: QueueConfig
    members: list[Member] = field(default_factory=list)
    callers: list[WaitingCaller] = field(default_factory=list)
    rr_next: int = 0
    completed: int = 0
    abandoned: int = 0
    holdtime: int = 0
    talktime: int = 0

    @property
    def name(self) -> str:
        return self.config.name

    def member(self, interface: str) -> Optional[Member]:
        for member in self.members:
            if member.interface == interface:
                return member
        return None

    def caller(self, uniqueid: str) -> WaitingCaller:
        for caller in self.callers:
            if caller.uniqueid == uniqueid:
                return caller
        raise KeyError(uniqueid)

    def position(self, uniqueid: str) -> int:
        return 1 + self.callers.index(self.caller(uniqueid))


def _avg(old: int, new: int) -> int:
    """app_queue's running average: (3 * old + new) / 4."""
    return (old * 3 + new) // 4


class QueueSystem:
    """All queues of the PBX and the devices their members share."""

    def __init__(self, configs: Iterable[QueueConfig], now: float) -> None:
        self.queues: dict[str, Queue] = {}
        self.devices: dict[str, Device] = {}
        for config in configs:
            queue = Queue(config)
            for mc in config.members:
                queue.members.append(Member(mc.interface, mc.name, mc.penalty, login_time=int(now)))
                self.devices.setdefault(mc.interface, Device())
            self.queues[config.name] = queue

    # ---- lookups -------------------------------------------------------------------------

    def queue(self, name: str) -> Queue:
        return self.queues[name]

    def device(self, interface: str) -> Device:
        return self.devices.setdefault(interface, Device())

    def member_status(self, interface: str) -> int:
        return self.device(interface).status(interface)

    def queues_of(self, interface: str) -> list[tuple[Queue, Member]]:
        return [(q, m) for q in self.queues.values() if (m := q.member(interface)) is not None]

    # ---- membership (QueueAdd / QueueRemove / QueuePause / QueuePenalty) -------------------

    def add_member(self, queue: str, interface: str, name: str, *, penalty: int = 0, paused: bool = False,
                   reason: str = "", now: float) -> Member:
        if queue not in self.queues:
            raise QueueError("Unable to add interface to queue: No such queue")
        q = self.queues[queue]
        if q.member(interface) is not None:
            raise QueueError("Unable to add interface: Already there")
        member = Member(interface, name or interface, penalty, dynamic=True, paused=paused,
                        paused_reason=reason if paused else "", login_time=int(now),
                        last_pause=int(now) if paused else 0)
        q.members.append(member)
        self.device(interface)
        return member

    def remove_member(self, queue: str, interface: str) -> Member:
        if queue not in self.queues:
            raise QueueError("Unable to remove interface from queue: No such queue")
        q = self.queues[queue]
        member = q.member(interface)
        if member is None:
            raise QueueError("Unable to remove interface: Not there")
        q.members.remove(member)
        return member

    def pause(self, interface: str, paused: bool, *, reason: str = "", queue: Optional[str] = None,
              now: float) -> list[tuple[Queue, Member]]:
        targets = [(q, m) for q, m in self.queues_of(interface) if queue is None or q.name == queue]
        if not targets:
            raise QueueError("Interface not found")
        for _, member in targets:
            member.paused = paused
            member.paused_reason = reason if paused else ""
            member.last_pause = int(now)
        return targets

    def set_penalty(self, interface: str, penalty: int, *, queue: Optional[str] = None) -> list[tuple[Queue, Member]]:
        targets = [(q, m) for q, m in self.queues_of(interface) if queue is None or q.name == queue]
        if not targets or penalty < 0:
            raise QueueError("Invalid interface, queuename or penalty")
        for _, member in targets:
            member.penalty = penalty
        return targets

    # ---- callers --------------------------------------------------------------------------

    def join(self, queue: str, uniqueid: str, priority: int, now: float) -> tuple[int, int]:
        """Put a caller in line; returns (position, count after the join)."""
        q = self.queues[queue]
        index = len(q.callers)
        for i, other in enumerate(q.callers):
            if priority > other.priority:
                index = i
                break
        q.callers.insert(index, WaitingCaller(uniqueid, priority, now, index + 1))
        return index + 1, len(q.callers)

    def _remove_caller(self, q: Queue, uniqueid: str) -> tuple[WaitingCaller, int]:
        caller = q.caller(uniqueid)
        position = q.callers.index(caller) + 1
        for interface in caller.ringing:
            self.device(interface).ringing -= 1
        q.callers.remove(caller)
        return caller, position

    def abandon(self, queue: str, uniqueid: str, now: float) -> Left:
        """The caller hung up while waiting (or ringing)."""
        q = self.queues[queue]
        cancelled = q.caller(uniqueid).ringing
        caller, position = self._remove_caller(q, uniqueid)
        q.abandoned += 1
        return Left(position, caller.original_position, int(now - caller.joined), len(q.callers), cancelled)

    def ring_decisions(self, now: float) -> list[Ring]:
        """Callers that start ringing members now, in queue-then-position order."""
        rings: list[Ring] = []
        for q in self.queues.values():
            for caller in q.callers:
                if caller.ringing or now < caller.retry_at:
                    continue
                chosen = self._choose(q, now)
                if not chosen:
                    continue
                caller.ringing = tuple(m.interface for m in chosen)
                caller.ring_started = now
                for member in chosen:
                    self.device(member.interface).ringing += 1
                rings.append(Ring(q.name, caller.uniqueid, caller.ringing))
        return rings

    def available(self, q: Queue, member: Member, now: float) -> bool:
        device = self.device(member.interface)
        return (not member.paused and not device.ringing and not device.in_call
                and now >= device.last_call_end + q.config.wrapuptime)

    def _choose(self, q: Queue, now: float) -> list[Member]:
        free = [(i, m) for i, m in enumerate(q.members) if self.available(q, m, now)]
        if not free:
            return []
        best = min(m.penalty for _, m in free)
        tier = [(i, m) for i, m in free if m.penalty == best]
        strategy = q.config.strategy
        if strategy is Strategy.RINGALL:
            return [m for _, m in tier]
        if strategy is Strategy.RRMEMORY:
            n = len(q.members)
            i, member = min(tier, key=lambda im: (im[0] - q.rr_next) % n)
            q.rr_next = (i + 1) % n
            return [member]
        if strategy is Strategy.LEASTRECENT:
            return [min(tier, key=lambda im: (self.device(im[1].interface).last_call_end, im[0]))[1]]
        if strategy is Strategy.FEWESTCALLS:
            return [min(tier, key=lambda im: (im[1].calls_taken, im[0]))[1]]
        raise ValueError(strategy)

    def ring_timeout(self, queue: str, uniqueid: str, now: float) -> tuple[str, ...]:
        """The ring of ``uniqueid`` reached the queue's timeout (or every rung member failed):
        stop ringing; the caller waits ``retry`` seconds. Returns the interfaces that stop ringing."""
        q = self.queues[queue]
        caller = q.caller(uniqueid)
        stopped = caller.ringing
        for interface in stopped:
            self.device(interface).ringing -= 1
        caller.ringing = ()
        caller.ring_started = None
        caller.retry_at = now + q.config.retry
        return stopped

    def answer(self, queue: str, uniqueid: str, interface: str, now: float) -> Connected:
        """``interface`` answered: the caller leaves the line, the other rung members stop ringing."""
        q = self.queues[queue]
        caller = q.caller(uniqueid)
        if interface not in caller.ringing:
            raise QueueError(f"{interface} is not ringing for {uniqueid}")
        ring_started = caller.ring_started if caller.ring_started is not None else now
        cancelled = tuple(i for i in caller.ringing if i != interface)
        caller, position = self._remove_caller(q, uniqueid)
        self.device(interface).in_call = True
        holdtime = int(now - caller.joined)
        q.holdtime = _avg(q.holdtime, holdtime)
        return Connected(holdtime, int(now - ring_started), position, caller.original_position,
                         len(q.callers), cancelled)

    def complete(self, queue: str, interface: str, talktime: float, now: float) -> None:
        """The bridged call ended: the member's counters move, wrap-up starts now."""
        q = self.queues[queue]
        device = self.device(interface)
        device.in_call = False
        device.last_call_end = now
        member = q.member(interface)
        if member is not None:
            member.calls_taken += 1
            member.last_call = int(now)
        q.completed += 1
        q.talktime = _avg(q.talktime, int(talktime))

    def next_wakeup(self, now: float) -> Optional[float]:
        """The next time a waiting caller may ring someone without any other event (a retry or a
        wrap-up ending), or None."""
        times: list[float] = []
        for q in self.queues.values():
            if not q.callers:
                continue
            for caller in q.callers:
                if not caller.ringing and caller.retry_at > now:
                    times.append(caller.retry_at)
            for member in q.members:
                end = self.device(member.interface).last_call_end + q.config.wrapuptime
                if end > now:
                    times.append(end)
        return min(times) if times else None
