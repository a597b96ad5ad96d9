"""Shift planning: cover a per-interval head-count requirement with 12/8/6-hour shifts at least paid hours.

An integer program, solved exactly by HiGHS (``scipy.optimize.milp``):

    minimise   Σ_s hours_s · x_s
    subject to requirement_t ≤ Σ_{s covers t} x_s ≤ seats   for every interval t
               x_s ∈ {0, 1, 2, ...}

where s ranges over every allowed (length, start) pair. Shifts lie within the planning horizon (the opening
hours), starting on the ``start_step_min`` grid and optionally only at ``allowed_starts``. ``seats`` is the
number of desks: without it the planner uses the fewest seats that admit a plan, starting from the peak
requirement (without any cap, the cheapest plan may overlap shifts and seat more people at a quiet hour
than the peak needs). The baseline to beat is flat staffing: the peak requirement on duty all day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import time
from typing import Sequence

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

DEFAULT_LENGTHS_H: tuple[float, ...] = (12.0, 8.0, 6.0)


@dataclass(frozen=True)
class Shift:
    """``count`` people working ``length_h`` hours from ``start``."""

    start: time
    length_h: float
    count: int
    first_slot: int
    slots: int

    @property
    def end(self) -> time:
        m = (self.start.hour * 60 + self.start.minute + round(self.length_h * 60)) % 1440
        return time(m // 60, m % 60)


@dataclass(frozen=True)
class ShiftPlan:
    """A plan and how it compares with flat staffing. ``coverage[t]`` people are on duty in interval t."""

    shifts: tuple[Shift, ...]
    requirement: tuple[int, ...]
    coverage: tuple[int, ...]
    slot_starts: tuple[time, ...]
    interval_min: int
    paid_hours: float
    flat_paid_hours: float
    optimal: bool
    seats: int

    @property
    def peak_requirement(self) -> int:
        return max(self.requirement, default=0)

    @property
    def peak_coverage(self) -> int:
        return max(self.coverage, default=0)

    @property
    def people(self) -> int:
        return sum(s.count for s in self.shifts)


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def plan_shifts(
    requirement: Sequence[int],
    day_start: time = time(8, 0),
    interval_min: int = 30,
    lengths_h: Sequence[float] = DEFAULT_LENGTHS_H,
    start_step_min: int = 30,
    allowed_starts: Sequence[time] | None = None,
    max_seats: int | None = None,
    time_limit_s: float = 10.0,
) -> ShiftPlan:
    """Shifts covering ``requirement`` (head count per interval from ``day_start``) at least paid hours."""
    req = [max(0, int(math.ceil(r))) for r in requirement]
    n = len(req)
    if interval_min <= 0 or start_step_min % interval_min:
        raise ValueError("start_step_min must be a multiple of interval_min")
    base = _minutes(day_start)
    slot_starts = tuple(time(((base + i * interval_min) // 60) % 24, (base + i * interval_min) % 60) for i in range(n))
    allowed = None if allowed_starts is None else {_minutes(t) for t in allowed_starts}
    cands: list[tuple[int, float, int]] = []  # (first slot, hours, slot count)
    for length in sorted(set(lengths_h), reverse=True):
        span = length * 60 / interval_min
        if span != int(span):
            raise ValueError(f"a {length} h shift is not a whole number of {interval_min}-minute intervals")
        span = int(span)
        for first in range(0, n - span + 1, start_step_min // interval_min):
            if allowed is None or (base + first * interval_min) % 1440 in allowed:
                cands.append((first, float(length), span))
    flat = max(req, default=0) * n * interval_min / 60
    if not any(req):
        return ShiftPlan((), tuple(req), (0,) * n, slot_starts, interval_min, 0.0, flat, True, 0)
    cover = np.zeros((n, len(cands)))
    for j, (first, _h, span) in enumerate(cands):
        cover[first : first + span, j] = 1.0
    uncovered = [t for t in range(n) if req[t] > 0 and not cover[t].any()]
    if uncovered:
        raise ValueError(f"no allowed shift covers interval {slot_starts[uncovered[0]].strftime('%H:%M')}")
    # Paid hours first; among plans with equal hours, fewer (longer) shifts: fewer people to hire.
    cost = np.array([h + 1e-4 for _f, h, _s in cands])
    peak = max(req)
    if max_seats is not None and max_seats < peak:
        raise ValueError(f"{max_seats} seats cannot hold the {peak} agents needed at the peak")
    caps = [max_seats] if max_seats is not None else list(range(peak, 2 * peak + 1))
    res = None
    for seats in caps:
        res = milp(
            c=cost,
            constraints=LinearConstraint(cover, lb=np.array(req, dtype=float), ub=float(seats)),
            integrality=np.ones(len(cands)),
            bounds=Bounds(0, seats),
            options={"time_limit": time_limit_s},
        )
        if res.x is not None:
            break
    if res is None or res.x is None:
        raise RuntimeError(f"shift planner found no plan: {res.message if res is not None else 'no candidate'}")
    x = np.rint(res.x).astype(int)
    coverage = tuple(int(v) for v in cover @ x)
    shifts = tuple(
        Shift(slot_starts[first], h, int(x[j]), first, span)
        for j, (first, h, span) in sorted(enumerate(cands), key=lambda c: (c[1][0], -c[1][1]))
        if x[j] > 0
    )
    paid = float(sum(sh.count * sh.length_h for sh in shifts))
    return ShiftPlan(shifts, tuple(req), coverage, slot_starts, interval_min, paid, flat, bool(res.status == 0), seats)
