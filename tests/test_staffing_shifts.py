"""Shift planner: coverage everywhere, fewer paid hours than flat staffing, optimal on small cases."""

from __future__ import annotations

from datetime import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.stats import erlang_a
from cti.stats.profile import seed_day
from cti.stats.shifts import plan_shifts


def test_a_flat_day_is_one_twelve_hour_shift_per_seat() -> None:
    plan = plan_shifts([3] * 24, time(8, 0), lengths_h=(12, 8, 6))
    assert plan.coverage == (3,) * 24
    assert [(s.start, s.length_h, s.count) for s in plan.shifts] == [(time(8, 0), 12.0, 3)]
    assert plan.paid_hours == plan.flat_paid_hours == 36
    assert plan.optimal


def test_two_peaks_use_short_shifts() -> None:
    # 08:00-20:00 at 30 min: 2 all day, +4 from 09:00 to 12:00 and +4 from 14:00 to 17:00.
    req = [2] * 24
    for i in list(range(2, 8)) + list(range(12, 18)):
        req[i] += 4
    plan = plan_shifts(req, time(8, 0))
    assert all(c >= r for c, r in zip(plan.coverage, req))
    # 2 x 12 h all day + 4 x 8 h from 09:00 to 17:00 (both peaks) is the least: 56 paid hours against 72 flat.
    assert plan.paid_hours == 56 and plan.flat_paid_hours == 72
    assert [(s.start, s.length_h, s.count) for s in plan.shifts] == [(time(8, 0), 12.0, 2), (time(9, 0), 8.0, 4)]
    assert plan.seats == 6


def test_allowed_starts_are_respected() -> None:
    req = [1] * 25  # 08:00-20:30
    plan = plan_shifts(req, time(8, 0), allowed_starts=[time(8, 0), time(14, 30)])
    assert {s.start for s in plan.shifts} <= {time(8, 0), time(14, 30)}
    assert all(c >= 1 for c in plan.coverage)
    with pytest.raises(ValueError):
        plan_shifts(req, time(8, 0), allowed_starts=[time(8, 0)])  # 20:00-20:30 cannot be covered


def test_seat_cap_trades_paid_hours_for_desks() -> None:
    # Peaks at both ends: the cheapest plan overlaps shifts in the middle, a seat cap forbids it.
    req = [4] * 4 + [1] * 16 + [4] * 4  # 08:00-20:00
    free = plan_shifts(req, time(8, 0), lengths_h=(12, 6))
    capped = plan_shifts(req, time(8, 0), lengths_h=(12, 6), max_seats=4)
    assert capped.seats == 4 and capped.peak_coverage <= 4 <= free.seats
    assert all(c >= r for c, r in zip(capped.coverage, req))
    assert capped.paid_hours >= free.paid_hours
    with pytest.raises(ValueError):
        plan_shifts(req, time(8, 0), max_seats=3)


def test_shift_lengths_must_fit_the_interval_grid() -> None:
    with pytest.raises(ValueError):
        plan_shifts([1] * 24, time(8, 0), interval_min=60, lengths_h=(7.5,))


def test_empty_requirement() -> None:
    plan = plan_shifts([0] * 10, time(8, 0))
    assert plan.shifts == () and plan.paid_hours == 0


def test_seed_day_plan_covers_erlang_a_and_beats_flat_staffing() -> None:
    req = [erlang_a.agents_required(s.calls, 1800, 600, 0.8, 90).agents for s in seed_day()]
    plan = plan_shifts(req, time(8, 0))
    assert all(c >= r for c, r in zip(plan.coverage, req))
    assert plan.peak_coverage - plan.peak_requirement <= 1
    assert plan.seats == plan.peak_coverage
    assert plan.paid_hours < plan.flat_paid_hours
    assert plan.optimal
    assert all(s.length_h in (12, 8, 6) for s in plan.shifts)
    assert all(s.first_slot + s.slots <= len(req) for s in plan.shifts)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([12, 24]).flatmap(lambda n: st.lists(st.integers(0, 40), min_size=n, max_size=n)))
def test_coverage_and_cost_properties(req: list[int]) -> None:
    # Horizons of 6 or 12 hours, so flat staffing itself is a valid plan and the optimum cannot cost more.
    plan = plan_shifts(req, time(8, 0))
    assert all(c >= r for c, r in zip(plan.coverage, req))
    assert plan.paid_hours <= plan.flat_paid_hours
    assert plan.seats == max(req) or not any(req)
    assert plan.paid_hours == sum(s.count * s.length_h for s in plan.shifts)
    # Coverage is exactly the sum of the shifts on duty.
    for t in range(len(req)):
        assert plan.coverage[t] == sum(s.count for s in plan.shifts if s.first_slot <= t < s.first_slot + s.slots)
