"""The issue's staffing claim on the simulated PBX's queue model (bench/simulated_day.py, virtual clock):
the day ``cti staffing plan`` proposes answers at least 80% of calls, and a plan a third short does not."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from simulated_day import plan_roster, simulate_day  # noqa: E402

from cti.stats.profile import seed_day  # noqa: E402
from cti.stats.staffing import StaffingParams, plan_day  # noqa: E402


def _plan():
    params = StaffingParams()
    return plan_day([(s.start, s.calls) for s in seed_day(2000, 30)], params)


def test_the_proposed_plan_answers_at_least_80_percent_of_a_simulated_day():
    plan = _plan()
    assert plan.shifts.peak_coverage == plan.peak_erlang_a == 33
    day = simulate_day(plan_roster(plan), random.Random(7), daily_calls=2000, aht_s=600, patience_s=120)
    assert 1800 < day.offered < 2200
    assert day.answered + day.abandoned == day.offered  # everyone is answered or gives up, nobody is lost
    assert day.answer_rate >= 0.8


def test_a_short_staffed_day_misses_the_target():
    plan = _plan()
    short = [(start, end, count * 2 // 3) for start, end, count in plan_roster(plan)]
    day = simulate_day(short, random.Random(7), daily_calls=2000, aht_s=600, patience_s=120)
    assert day.answer_rate < 0.8
