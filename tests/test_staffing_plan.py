"""Staffing composition: both models per interval, the plan covers the chosen one, Erlang A grades the plan."""

from __future__ import annotations

from datetime import time

import pytest

from cti.stats import erlang, erlang_a
from cti.stats.profile import seed_day
from cti.stats.staffing import StaffingParams, interval_requirement, plan_day

SEED = [(s.start, s.calls) for s in seed_day()]


def test_each_interval_carries_both_models() -> None:
    r = interval_requirement(time(9, 0), 117.0, StaffingParams(aht_s=600, patience_s=120))
    assert r.erlang_c.model == "erlang_c" and r.erlang_a.model == "erlang_a"
    assert r.erlang_c.agents == erlang.agents_required(39.0, 600, 0.8, 20).agents == 46
    assert r.erlang_a.agents == erlang_a.agents_required(117.0, 1800, 600, 0.8, 120).agents == 33
    assert (r.required, r.model) == (33, "erlang_a")
    c = interval_requirement(time(9, 0), 117.0, StaffingParams(aht_s=600, model="erlang_c"))
    assert (c.required, c.rostered) == (46, 46)


def test_shrinkage_and_occupancy_cap() -> None:
    r = interval_requirement(time(9, 0), 117.0, StaffingParams(aht_s=600, shrinkage=0.25, max_occupancy=0.85))
    assert r.erlang_c.agents >= 39.0 / 0.85
    assert r.erlang_a.occupancy <= 0.85 and r.erlang_a.agents > 33
    assert r.rostered == erlang.scheduled_agents(r.erlang_a.agents, 0.25)


def test_erlang_a_sl_adds_the_service_level_constraint() -> None:
    r = interval_requirement(time(9, 0), 117.0, StaffingParams(aht_s=600, erlang_a_sl=True))
    assert r.erlang_a.service_level >= 0.8 and r.erlang_a.answer_rate >= 0.8 and r.erlang_a.agents > 33


def test_seed_day_plan_is_within_one_seat_of_erlang_a_and_cheaper_than_flat() -> None:
    plan = plan_day(SEED, StaffingParams(aht_s=600, patience_s=120))
    assert plan.peak_erlang_a == 33 and plan.peak_erlang_c == 46
    assert abs(plan.shifts.peak_coverage - plan.peak_erlang_a) <= 1
    assert all(c >= r.rostered for c, r in zip(plan.shifts.coverage, plan.intervals))
    assert plan.shifts.paid_hours < plan.shifts.flat_paid_hours
    assert all(d.answer_rate >= 0.8 for d in plan.delivered)
    assert plan.day_answer_rate is not None and plan.day_answer_rate >= 0.8


def test_plan_with_shrinkage_grades_only_the_agents_on_the_phones() -> None:
    plan = plan_day(SEED, StaffingParams(aht_s=600, shrinkage=0.3))
    for d in plan.delivered:
        assert d.on_phones == int(d.planned * 0.7 + 1e-9)
        assert d.answer_rate >= 0.8 - 1e-9
    with pytest.raises(ValueError):
        plan_day([], StaffingParams())
    with pytest.raises(ValueError):
        StaffingParams(model="erlang_b")


def simulate_day(plan, aht_s: float, patience_s: float, days: int, seed: int) -> tuple[float, float]:
    """The seed's day by discrete-event simulation, staffed shift by shift as planned: Poisson arrivals at
    each interval's forecast rate, exponential handling and patience, FCFS; an agent takes no new call after
    the shift ends but finishes the one in hand. Returns (answer rate, worst single day's answer rate)."""
    import random

    rng = random.Random(seed)
    step = plan.params.interval_min * 60.0
    rates = [(i * step, d.calls / step) for i, d in enumerate(plan.delivered)]
    shifts = [(s.first_slot * step, (s.first_slot + s.slots) * step) for s in plan.shifts.shifts for _ in range(s.count)]
    offered = answered = 0
    worst = 1.0
    for _ in range(days):
        free = [start for start, _end in shifts]
        day_offered = day_answered = 0
        for start, rate in rates:
            t = start
            while True:
                t += rng.expovariate(rate)
                if t >= start + step:
                    break
                patience = rng.expovariate(1 / patience_s)
                best, who = None, -1
                for j, (s0, s1) in enumerate(shifts):
                    s = max(t, free[j])
                    if s < s1 and (best is None or s < best):
                        best, who = s, j
                day_offered += 1
                if best is not None and best - t <= patience:
                    day_answered += 1
                    free[who] = best + rng.expovariate(1 / aht_s)
        offered += day_offered
        answered += day_answered
        worst = min(worst, day_answered / day_offered)
    return answered / offered, worst


def test_a_simulated_day_staffed_by_the_plan_answers_at_least_80_percent() -> None:
    """Erlang A's stationary figures are an approximation for a day whose load changes every half hour:
    the simulation confirms the plan (33 seats at peak) answers over 80% of calls, day after day."""
    plan = plan_day(SEED, StaffingParams(aht_s=600, patience_s=120))
    rate, worst = simulate_day(plan, 600, 120, days=10, seed=2000)
    assert rate >= 0.8 and worst >= 0.8
    assert abs(rate - plan.day_answer_rate) < 0.03
