"""The supervisor wallboard as numbers: pure aggregation of the live state and today's ended calls.

Inputs are plain data: a :class:`~cti.calls.live.LiveState` snapshot (``LiveState.snapshot(now)``: queues
with their waiting callers and members, agents with their state) and the calls that ended today, as
:class:`EndedCall` (from the ``call.ended`` bus payload, or from ``calls`` rows at start-up). Nothing
here reads a clock, a socket or a database: every function takes ``now``.

Definitions are those of :mod:`cti.stats.reports` (shares of *offered* calls, the seed's "80% answered"):

- **offered**: the call reached a queue (outcome ``answered``, ``transferred``, ``abandoned``, ``timeout``);
- **answer rate** = answered / offered; **abandon rate** = abandoned / offered;
- **service level** = answered within ``sl_seconds`` of entering the queue / offered;
- **average wait**: mean queue wait of offered calls (answered and not); **ASA**: of answered calls;
- **AHT**: mean talk time of answered calls (the calls table holds no wrap-up time);
- a call counts in the period in which it *ended* (today = since local midnight, last hour = ``now - 3600``).

Agents: ``ready``, ``ringing``, ``on_call``, ``wrap_up``, ``paused``, ``unavailable`` (the live state's
names). Per queue, an agent counts in every queue it is a member of; overall, once.

Red flags: a figure is ``red`` when it misses its :class:`Targets` (rates only once ``min_offered`` calls were
offered in the period, so the first call of the day does not paint the board red).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime, tzinfo
from typing import Any, Iterable, Mapping, Sequence

from cti.stats.reports import ANSWERED, OFFERED, CallRow, as_utc

AGENT_STATES = ("ready", "ringing", "on_call", "wrap_up", "paused", "unavailable")
OVERALL = "*"


@dataclass(frozen=True)
class Targets:
    """What the board compares against. ``None`` switches a check off."""

    sl_seconds: float = 20.0
    answer_rate: float | None = 0.8
    service_level: float | None = 0.8
    abandon_rate: float | None = 0.2
    longest_wait_s: float | None = 120.0
    min_offered: int = 5
    #: Amber ("watch"): a rate within ``warn_margin`` of its target, a longest wait above ``warn_wait_s``.
    warn_margin: float = 0.05
    warn_wait_s: float | None = 60.0

    @classmethod
    def from_config(cls, c: Any, sl_seconds: float = 20.0) -> "Targets":
        """From :class:`cti.config.WallboardConfig` (a negative threshold switches that check off)."""
        def on(v: float) -> float | None:
            return None if v < 0 else float(v)

        return cls(sl_seconds, on(c.answer_rate), on(c.service_level), on(c.abandon_rate), on(c.longest_wait_s),
                   int(c.min_offered), float(c.warn_margin), on(c.warn_wait_s))


@dataclass(frozen=True)
class EndedCall:
    """What the wallboard needs of one ended call."""

    ended_at: float
    queue: str
    outcome: str
    wait_s: float | None
    talk_s: float | None

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> "EndedCall | None":
        """From a ``call.ended`` bus payload; None when the call never reached a queue."""
        outcome = p.get("outcome") or ""
        if outcome not in OFFERED:
            return None
        ended = p.get("ended_at") or p.get("at")
        if ended is None:
            return None
        return cls(float(ended), str(p.get("queue") or ""), outcome, _num(p.get("wait_s")), _num(p.get("talk_s")))

    @classmethod
    def from_row(cls, r: CallRow) -> "EndedCall | None":
        """From a ``calls`` row (:func:`cti.stats.reports.load_calls`); None if not offered or still open."""
        if r.outcome not in OFFERED:
            return None
        end = r.ended_at or r.answered_at or r.queued_at or r.started_at
        wait = _num(r.wait_s)
        if wait is None and r.answered_at is not None:
            wait = max(0.0, (as_utc(r.answered_at) - as_utc(r.queued_at or r.started_at)).total_seconds())
        talk = _num(r.talk_s)
        if talk is None and r.outcome in ANSWERED and r.answered_at is not None and r.ended_at is not None:
            talk = max(0.0, (as_utc(r.ended_at) - as_utc(r.answered_at)).total_seconds())
        return cls(as_utc(end).timestamp(), r.queue or "", r.outcome, wait, talk)


def _num(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def local_midnight(now: float, tz: tzinfo) -> float:
    """Epoch seconds of the start of ``now``'s day in zone ``tz``."""
    d = datetime.fromtimestamp(now, tz)
    return d.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


class TodaysCalls:
    """The calls that ended today, oldest first; older days fall off at :meth:`prune`. Not thread-safe."""

    def __init__(self, calls: Iterable[EndedCall] = ()) -> None:
        self.calls: deque[EndedCall] = deque(sorted(calls, key=lambda c: c.ended_at))

    def add(self, call: EndedCall) -> None:
        if self.calls and call.ended_at < self.calls[-1].ended_at:  # rare: keep the order
            items = list(self.calls)
            items.append(call)
            items.sort(key=lambda c: c.ended_at)
            self.calls = deque(items)
        else:
            self.calls.append(call)

    def prune(self, day_start: float) -> None:
        while self.calls and self.calls[0].ended_at < day_start:
            self.calls.popleft()

    def since(self, start: float) -> list[EndedCall]:
        return [c for c in self.calls if c.ended_at >= start]


@dataclass(frozen=True)
class Period:
    """Call figures of one queue (or all) over one period."""

    offered: int
    answered: int
    abandoned: int
    timeout: int
    answered_within: int
    answer_rate: float | None
    service_level: float | None
    abandon_rate: float | None
    avg_wait_s: float | None
    asa_s: float | None
    aht_s: float | None


def period_figures(calls: Sequence[EndedCall], sl_seconds: float) -> Period:
    """Offered/answered/abandoned and the rates over ``calls`` (all assumed offered)."""
    offered = answered = abandoned = timeout = within = 0
    waits: list[float] = []
    answered_waits: list[float] = []
    talks: list[float] = []
    for c in calls:
        if c.outcome not in OFFERED:
            continue
        offered += 1
        if c.wait_s is not None:
            waits.append(c.wait_s)
        if c.outcome in ANSWERED:
            answered += 1
            if c.wait_s is not None:
                answered_waits.append(c.wait_s)
                if c.wait_s <= sl_seconds:
                    within += 1
            if c.talk_s is not None:
                talks.append(c.talk_s)
        elif c.outcome == "abandoned":
            abandoned += 1
        else:
            timeout += 1

    def mean(xs: list[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    return Period(
        offered=offered,
        answered=answered,
        abandoned=abandoned,
        timeout=timeout,
        answered_within=within,
        answer_rate=answered / offered if offered else None,
        service_level=within / offered if offered else None,
        abandon_rate=abandoned / offered if offered else None,
        avg_wait_s=mean(waits),
        asa_s=mean(answered_waits),
        aht_s=mean(talks),
    )


def red_flags(waiting: int, longest_wait_s: float, today: Period, last_hour: Period, t: Targets) -> list[str]:
    """Names of the figures that miss their targets: ``longest_wait``, ``{today,last_hour}.{answer_rate,
    service_level,abandon_rate}``."""
    flags: list[str] = []
    if t.longest_wait_s is not None and waiting and longest_wait_s > t.longest_wait_s:
        flags.append("longest_wait")
    for name, p in (("today", today), ("last_hour", last_hour)):
        if p.offered < max(1, t.min_offered):
            continue
        if t.answer_rate is not None and p.answer_rate is not None and p.answer_rate < t.answer_rate:
            flags.append(f"{name}.answer_rate")
        if t.service_level is not None and p.service_level is not None and p.service_level < t.service_level:
            flags.append(f"{name}.service_level")
        if t.abandon_rate is not None and p.abandon_rate is not None and p.abandon_rate > t.abandon_rate:
            flags.append(f"{name}.abandon_rate")
    return flags


def amber_flags(waiting: int, longest_wait_s: float, today: Period, last_hour: Period, t: Targets) -> list[str]:
    """Figures close to their targets (within ``warn_margin``) but not missing them: same names as red flags."""
    flags: list[str] = []
    if t.warn_wait_s is not None and waiting and longest_wait_s > t.warn_wait_s:
        flags.append("longest_wait")
    for name, p in (("today", today), ("last_hour", last_hour)):
        if p.offered < max(1, t.min_offered):
            continue
        for key, target, higher_is_better in (("answer_rate", t.answer_rate, True),
                                              ("service_level", t.service_level, True),
                                              ("abandon_rate", t.abandon_rate, False)):
            v = getattr(p, key)
            if target is None or v is None:
                continue
            if (target <= v < target + t.warn_margin) if higher_is_better else (target - t.warn_margin < v <= target):
                flags.append(f"{name}.{key}")
    red = set(red_flags(waiting, longest_wait_s, today, last_hour, t))
    return [f for f in flags if f not in red]


def level(red: Sequence[str], amber: Sequence[str]) -> str:
    """A tile's colour: ``red`` if a figure misses its target, ``amber`` if one is close, else ``green``."""
    return "red" if red else "amber" if amber else "green"


def _agent_counts(states: Iterable[str]) -> dict[str, int]:
    counts = dict.fromkeys(AGENT_STATES, 0)
    for s in states:
        if s in counts:
            counts[s] += 1
    counts["logged_in"] = sum(counts.values())
    return counts


def _tile(name: str, waiting: int, longest: float, agents: dict[str, int], today: Period, hour: Period,
          t: Targets) -> dict[str, Any]:
    red = red_flags(waiting, longest, today, hour, t)
    amber = amber_flags(waiting, longest, today, hour, t)
    return {
        "queue": name,
        "waiting": waiting,
        "longest_wait_s": longest,
        "agents": agents,
        "today": asdict(today),
        "last_hour": asdict(hour),
        "red": red,
        "amber": amber,
        "level": level(red, amber),
    }


def wallboard(snapshot: Mapping[str, Any], calls: Sequence[EndedCall], now: float, day_start: float,
              targets: Targets = Targets()) -> dict[str, Any]:
    """The board: ``{"at", "day_start", "targets", "overall": tile, "queues": [tile, ...]}``.

    ``snapshot`` is ``LiveState.snapshot(now)``; ``calls`` the calls ended since ``day_start`` (older
    ones are ignored). A tile: ``{queue, waiting, longest_wait_s, agents: {ready, ringing, on_call, wrap_up,
    paused, unavailable, logged_in}, today: Period, last_hour: Period, red: [flag, ...]}``. Queues are those
    of the live state (with callers, or with members: an agent's ``queues``) plus any that ended calls today,
    sorted by name."""
    today_calls = [c for c in calls if c.ended_at >= day_start]
    hour_start = now - 3600.0
    by_queue: dict[str, list[EndedCall]] = {}
    for c in today_calls:
        by_queue.setdefault(c.queue, []).append(c)
    live_queues = {q["queue"]: q for q in snapshot.get("queues", ())}
    # a queue nobody called yet is known to the live state only through its members
    member_of: dict[str, list[str]] = {}
    for a in snapshot.get("agents", ()):
        for qname in a.get("queues", ()):
            member_of.setdefault(qname, []).append(a["state"])
    tiles = []
    total_waiting = 0
    longest = 0.0
    for name in sorted(set(live_queues) | set(member_of) | {q for q in by_queue if q}):
        q = live_queues.get(name)
        waiting = int(q["waiting_count"]) if q else 0
        q_longest = float(q["longest_wait_s"]) if q else 0.0
        total_waiting += waiting
        longest = max(longest, q_longest)
        states = [m["state"] for m in q["members"]] if q and "members" in q else member_of.get(name, [])
        agents = _agent_counts(states)
        mine = by_queue.get(name, [])
        tiles.append(_tile(name, waiting, q_longest, agents, period_figures(mine, targets.sl_seconds),
                           period_figures([c for c in mine if c.ended_at >= hour_start], targets.sl_seconds), targets))
    overall_agents = _agent_counts(a["state"] for a in snapshot.get("agents", ()))
    overall = _tile(OVERALL, total_waiting, longest, overall_agents,
                    period_figures(today_calls, targets.sl_seconds),
                    period_figures([c for c in today_calls if c.ended_at >= hour_start], targets.sl_seconds), targets)
    return {"at": now, "day_start": day_start, "targets": asdict(targets), "overall": overall, "queues": tiles}
