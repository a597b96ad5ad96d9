"""Staffing per interval from a forecast, with both models side by side, and a shift plan that covers it.

For each interval: Erlang C gives the agents for the service-level target (``sl_target`` within
``sl_seconds``, callers never abandon); Erlang A gives the agents for the *answer-rate* target with callers'
patience (and, if ``erlang_a_sl`` is set, the service level too). ``model`` picks which requirement the
shift plan covers; both are always reported, each labelled with the model that produced it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import time
from typing import Sequence

from cti.stats import erlang, erlang_a
from cti.stats.erlang import ErlangCResult
from cti.stats.erlang_a import ErlangAResult
from cti.stats.shifts import DEFAULT_LENGTHS_H, ShiftPlan, plan_shifts

MODELS = ("erlang_a", "erlang_c")


@dataclass(frozen=True)
class StaffingParams:
    aht_s: float = 600.0
    interval_min: int = 30
    answer_target: float = 0.8
    patience_s: float = erlang_a.DEFAULT_PATIENCE_S
    sl_target: float = 0.8
    sl_seconds: float = 20.0
    shrinkage: float = 0.0
    max_occupancy: float | None = None
    model: str = "erlang_a"
    erlang_a_sl: bool = False

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}")


@dataclass(frozen=True)
class IntervalStaffing:
    """One interval: the forecast, what each model asks, and what the plan uses (``required`` on the
    phones, ``rostered`` with shrinkage)."""

    start: time
    calls: float
    traffic: float
    erlang_c: ErlangCResult
    erlang_a: ErlangAResult
    required: int
    rostered: int
    model: str


def interval_requirement(start: time, calls: float, p: StaffingParams) -> IntervalStaffing:
    interval_s = p.interval_min * 60.0
    traffic = erlang.traffic_intensity(calls, interval_s, p.aht_s)
    c = erlang.agents_required(traffic, p.aht_s, p.sl_target, p.sl_seconds, p.max_occupancy, p.shrinkage)
    a = erlang_a.agents_required(
        calls,
        interval_s,
        p.aht_s,
        p.answer_target,
        p.patience_s,
        target_sl=p.sl_target if p.erlang_a_sl else None,
        sl_seconds=p.sl_seconds,
        shrinkage=p.shrinkage,
    )
    if p.max_occupancy is not None and a.agents and calls > 0:
        n = a.agents
        while erlang_a.evaluate(n, calls, interval_s, p.aht_s, p.patience_s, p.sl_seconds).occupancy > p.max_occupancy + 1e-9:
            n += 1
        if n != a.agents:
            a = erlang_a.evaluate(n, calls, interval_s, p.aht_s, p.patience_s, p.sl_seconds, p.shrinkage)
    chosen = a if p.model == "erlang_a" else c
    return IntervalStaffing(start, calls, traffic, c, a, chosen.agents, chosen.scheduled, p.model)


def requirements(slots: Sequence[tuple[time, float]], p: StaffingParams) -> list[IntervalStaffing]:
    """Both models' requirement for every (interval start, forecast calls)."""
    return [interval_requirement(start, calls, p) for start, calls in slots]


@dataclass(frozen=True)
class PlannedInterval:
    """What the plan delivers in one interval: ``on_phones`` = planned × (1 - shrinkage), rounded down;
    answer rate and service level as Erlang A predicts them for that many agents."""

    start: time
    calls: float
    planned: int
    on_phones: int
    answer_rate: float
    service_level: float
    model: str = erlang_a.MODEL


@dataclass(frozen=True)
class StaffingPlan:
    params: StaffingParams
    intervals: tuple[IntervalStaffing, ...]
    shifts: ShiftPlan
    delivered: tuple[PlannedInterval, ...]

    @property
    def peak_erlang_a(self) -> int:
        return max((i.erlang_a.scheduled for i in self.intervals), default=0)

    @property
    def peak_erlang_c(self) -> int:
        return max((i.erlang_c.scheduled for i in self.intervals), default=0)

    @property
    def day_answer_rate(self) -> float | None:
        """Erlang A's answer rate for the whole day under the plan (weighted by forecast calls)."""
        total = sum(d.calls for d in self.delivered)
        return sum(d.answer_rate * d.calls for d in self.delivered) / total if total else None

    @property
    def day_service_level(self) -> float | None:
        total = sum(d.calls for d in self.delivered)
        return sum(d.service_level * d.calls for d in self.delivered) / total if total else None


def plan_day(
    slots: Sequence[tuple[time, float]],
    p: StaffingParams,
    lengths_h: Sequence[float] = DEFAULT_LENGTHS_H,
    start_step_min: int = 30,
    allowed_starts: Sequence[time] | None = None,
    max_seats: int | None = None,
) -> StaffingPlan:
    """Requirement per interval (both models), shifts covering the chosen model's rostered head count, and
    what that plan delivers according to Erlang A. ``slots`` must be consecutive intervals."""
    if not slots:
        raise ValueError("nothing to plan: no intervals")
    reqs = requirements(slots, p)
    shifts = plan_shifts(
        [r.rostered for r in reqs],
        day_start=slots[0][0],
        interval_min=p.interval_min,
        lengths_h=lengths_h,
        start_step_min=start_step_min,
        allowed_starts=allowed_starts,
        max_seats=max_seats,
    )
    interval_s = p.interval_min * 60.0
    delivered = []
    for r, planned in zip(reqs, shifts.coverage):
        on = math.floor(planned * (1.0 - p.shrinkage) + 1e-9)
        ev = erlang_a.evaluate(on, r.calls, interval_s, p.aht_s, p.patience_s, p.sl_seconds)
        delivered.append(PlannedInterval(r.start, r.calls, planned, on, ev.answer_rate, ev.service_level))
    return StaffingPlan(p, tuple(reqs), shifts, tuple(delivered))
