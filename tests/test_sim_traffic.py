"""Traffic: deterministic with a seed, daily volume and hourly peaks of a real 800 line."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from statistics import mean


from cti.sim.clock import SimClock
from cti.sim.config import SimConfig
from cti.sim.pbx import SimPbx
from cti.sim.testing import ScriptedAgiServer
from cti.sim.traffic import (
    DEFAULT_PROFILE,
    CallerPool,
    arrivals,
    expected_share,
    hourly_counts,
    load_callers,
    midnight,
    run_traffic,
)

DAY = midnight(1_800_000_000.0)  # a local midnight: the profile is relative to it


def day_of(seed: int, calls: float = 2000) -> list[float]:
    return list(arrivals(calls, random.Random(seed), day_start=DAY))


def test_same_seed_same_day_other_seed_other_day() -> None:
    assert day_of(1) == day_of(1)
    assert day_of(1) != day_of(2)


def test_arrivals_are_ordered_and_inside_opening_hours() -> None:
    times = day_of(5)
    assert times == sorted(times)
    assert all(DAY + 8 * 3600 <= t < DAY + 20.5 * 3600 for t in times)


def test_daily_volume_is_about_2000() -> None:
    days = [len(day_of(seed)) for seed in range(30)]
    assert abs(mean(days) - 2000) < 40  # the mean of 30 Poisson(2000) days: sd ~8
    assert all(1800 < n < 2200 for n in days)  # each day within ~4.5 sd


def test_peaks_are_9_to_10_and_14_to_15() -> None:
    counts = [0] * 24
    for seed in range(10):
        for hour, n in enumerate(hourly_counts(day_of(seed), DAY)):
            counts[hour] += n
    top_two = sorted(range(24), key=lambda h: counts[h], reverse=True)[:2]
    assert sorted(top_two) == [9, 14]
    assert sum(counts[:8]) == 0 and sum(counts[21:]) == 0
    assert 0 < counts[20] < counts[19]  # open until 20:30 only
    total = sum(counts)
    for hour in range(8, 21):
        share = counts[hour] / total
        assert abs(share - expected_share(DEFAULT_PROFILE, hour)) < 0.01, hour


def test_caller_pool_mixes_known_and_unknown_deterministically() -> None:
    known = [("13800138000", "Wang Wei"), ("13912345678", "Li Ming")]
    picks = [CallerPool(known, random.Random(3), unknown_share=0.4).pick() for _ in range(1)]
    pool_a, pool_b = CallerPool(known, random.Random(9), 0.4), CallerPool(known, random.Random(9), 0.4)
    a = [pool_a.pick() for _ in range(2000)]
    assert a == [pool_b.pick() for _ in range(2000)]
    share_unknown = sum(not c.known for c in a) / len(a)
    assert 0.35 < share_unknown < 0.45
    assert {c.number for c in a if c.known} == {n for n, _ in known}
    unknown = [c.number for c in a if not c.known]
    assert all(n.isdigit() and n not in dict(known) and len(n) in (11, 12) for n in unknown)
    assert picks


def test_caller_pool_without_known_numbers_is_all_unknown() -> None:
    pool = CallerPool([], random.Random(1))
    assert not any(pool.pick().known for _ in range(50))


def test_load_callers_reads_number_name_csv(tmp_path: Path) -> None:
    path = tmp_path / "callers.csv"
    path.write_text("number,name\n13800138000,Wang Wei\n+8613912345678,李明\n\n", encoding="utf-8")
    assert load_callers(path) == [("13800138000", "Wang Wei"), ("+8613912345678", "李明")]


async def test_run_traffic_places_the_days_calls_on_a_fast_clock() -> None:
    """A 12.5-hour day at x20000 takes ~2 s: the calls are placed on the PBX at their times."""
    agi = await ScriptedAgiServer(lambda env: {"CTI_QUEUE": "mobile", "CTI_GREETING": "hello"}).start()
    start = DAY + 7 * 3600  # before opening: no arrival is skipped
    config = SimConfig(ami_port=0, agi_port=agi.port, seed=11, patience_mean=30)
    pbx = SimPbx(config, clock=SimClock(20000, start))
    await pbx.start()
    try:
        placed = await asyncio.wait_for(
            run_traffic(pbx, 100, CallerPool([("13800138000", "Wang Wei")], random.Random(2)), days=1,
                        rng=random.Random(4)), 30)
    finally:
        await pbx.stop()
        await agi.stop()
    expected = len(list(arrivals(100, random.Random(4), day_start=DAY)))
    assert placed == expected and 70 < placed < 130
    assert len(agi.envs) > 0  # calls really reached the FastAGI server
