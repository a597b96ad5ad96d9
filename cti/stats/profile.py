"""The seed's 800 line as numbers: opening hours, daily volume, handling time and intraday shape.

The seed's figures: about 2,000 calls a day, open 8:00–20:30, peaks 9–10 and 14–15, about 60 calls per agent
in a 12-hour day (so about 10 minutes of handling per call), and the industry standard of 80% of calls
answered. The hourly weights below are the simulated PBX's default profile (``cti.sim.traffic.DEFAULT_PROFILE``;
a test keeps them equal), so that a plan and a simulated day describe the same line; within an hour calls
arrive at a constant rate. Peak half hour: 2,000 × 11/94 / 2 = 117 calls, 39 Erlangs at 600 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

SEED_DAILY_CALLS = 2000
SEED_AHT_S = 600.0
SEED_TARGET_ANSWER_RATE = 0.8
SEED_OPEN = time(8, 0)
SEED_CLOSE = time(20, 30)

#: Callers' mean patience, seconds (exponential, as Erlang A assumes). 120 s is the top of the 60–120 s range
#: considered for the seed's line and the simulated PBX's default ``patience_mean``, so a plan and a simulated
#: day assume the same callers; pass ``patience_s`` when history says otherwise (the maximum-likelihood
#: estimate under this model is the total waiting time of all callers divided by the abandoned calls).
DEFAULT_PATIENCE_S = 120.0

#: (start hour, end hour, relative weight): open 8:00-20:30, peaks 9-10 and 14-15.
SEED_HOURLY_WEIGHTS: tuple[tuple[float, float, float], ...] = (
    (8, 9, 5), (9, 10, 11), (10, 11, 9), (11, 12, 8), (12, 13, 6), (13, 14, 7), (14, 15, 11),
    (15, 16, 9), (16, 17, 8), (17, 18, 7), (18, 19, 6), (19, 20, 5), (20, 20.5, 2),
)


@dataclass(frozen=True)
class Slot:
    """One interval of a day: start time of day and expected offered calls."""

    start: time
    calls: float


def seed_day(daily_calls: float = SEED_DAILY_CALLS, interval_min: int = 30) -> list[Slot]:
    """The seed's day in ``interval_min`` slots (30: 25 half hours from 08:00) summing to ``daily_calls``."""
    if interval_min <= 0 or 30 % interval_min and interval_min % 30:
        raise ValueError("interval_min must divide or be a multiple of 30")
    total = sum(w for _s, _e, w in SEED_HOURLY_WEIGHTS)
    open_m = round(SEED_HOURLY_WEIGHTS[0][0] * 60)
    close_m = round(SEED_HOURLY_WEIGHTS[-1][1] * 60)
    out = []
    for m in range(open_m, close_m, interval_min):
        calls = 0.0
        for s, e, w in SEED_HOURLY_WEIGHTS:
            lo, hi = max(m, s * 60), min(m + interval_min, e * 60, close_m)
            if hi > lo:
                calls += daily_calls * w / total * (hi - lo) / ((e - s) * 60)
        out.append(Slot(time(m // 60, m % 60), calls))
    return out


def seed_hourly_profile(daily_calls: float = SEED_DAILY_CALLS) -> dict[int, float]:
    """Expected calls per clock hour (8..20)."""
    hours: dict[int, float] = {}
    for slot in seed_day(daily_calls):
        hours[slot.start.hour] = hours.get(slot.start.hour, 0.0) + slot.calls
    return hours
