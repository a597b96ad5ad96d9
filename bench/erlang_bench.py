"""Erlang C/A staffing for a week of 30-minute intervals (336), timed against a same-run baseline.

Run: python bench/erlang_bench.py [--repeat 5]

The baseline is the textbook factorial formula (math.factorial, float division) on the same week, which is
what the stable recurrence replaces: it overflows past ~170 agents, so the baseline week is kept at the
seed's scale (up to ~50 Erlangs). Prints seconds per week and the ratio; no pass/fail threshold here (the
unit tests make no timing assertions).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

from cti.stats import erlang, erlang_a
from cti.stats.profile import seed_day


def week(daily_calls: float) -> list[float]:
    """336 half-hour volumes: the seed's day for the 25 open half hours, light night traffic otherwise."""
    day = {s.start.hour * 2 + s.start.minute // 30: s.calls for s in seed_day(daily_calls)}
    return [day.get(i, daily_calls / 400) for _d in range(7) for i in range(48)]


def factorial_c(n: int, a: float) -> float:
    top = a**n / math.factorial(n) * n / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


def factorial_agents(a: float, aht: float, target: float, t: float) -> int:
    n = int(a) + 1
    while 1 - factorial_c(n, a) * math.exp(-(n - a) * t / aht) < target:
        n += 1
    return n


def timed(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    aht = 600.0
    for daily in (2000, 20000, 100000):
        vols = week(daily)
        loads = [erlang.traffic_intensity(c, 1800, aht) for c in vols]
        c_s = timed(lambda: [erlang.agents_required(a, aht, 0.8, 20) for a in loads], args.repeat)
        a_s = timed(lambda: [erlang_a.agents_required(c, 1800, aht, 0.8, 120) for c in vols], max(1, args.repeat // 2))
        line = f"{daily:>6} calls/day (peak {max(loads):6.1f} E): erlang_c week {c_s * 1000:7.1f} ms, erlang_a week {a_s * 1000:7.1f} ms"
        if daily == 2000:
            base = timed(lambda: [factorial_agents(a, aht, 0.8, 20) for a in loads], args.repeat)
            agree = all(factorial_agents(a, aht, 0.8, 20) == erlang.agents_required(a, aht, 0.8, 20).agents for a in loads)
            line += f"; factorial baseline {base * 1000:7.1f} ms (ratio {base / c_s:4.1f}x, same answers: {agree})"
        print(line)


if __name__ == "__main__":
    main()
