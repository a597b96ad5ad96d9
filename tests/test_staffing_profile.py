"""The staffing profile and the simulated PBX's default traffic describe the same 800 line."""

from __future__ import annotations

import pytest

from cti.stats.profile import SEED_HOURLY_WEIGHTS, seed_day, seed_hourly_profile


def test_same_hourly_weights_as_the_simulated_pbx() -> None:
    traffic = pytest.importorskip("cti.sim.traffic")
    assert [(s.start, s.end, s.weight) for s in traffic.DEFAULT_PROFILE] == [tuple(map(float, w)) for w in SEED_HOURLY_WEIGHTS]


@pytest.mark.parametrize(("interval", "slots"), [(15, 50), (30, 25), (60, 13)])
def test_seed_day_sums_to_the_daily_volume(interval: int, slots: int) -> None:
    day = seed_day(2000, interval)
    assert len(day) == slots
    assert sum(s.calls for s in day) == pytest.approx(2000)
    assert day[0].start.strftime("%H:%M") == "08:00"


def test_peaks_are_at_nine_and_fourteen() -> None:
    hours = seed_hourly_profile()
    top = sorted(hours, key=hours.get, reverse=True)[:2]
    assert sorted(top) == [9, 14]
    assert hours[9] == pytest.approx(2000 * 11 / 94)
    assert seed_day(2000, 30)[2].calls == pytest.approx(2000 * 11 / 94 / 2)


def test_same_default_patience_as_the_simulated_pbx() -> None:
    from dataclasses import fields

    from cti.stats import erlang_a
    from cti.stats.profile import DEFAULT_PATIENCE_S

    config = pytest.importorskip("cti.sim.config")
    (patience,) = [f.default for f in fields(config.SimConfig) if f.name == "patience_mean"]
    assert DEFAULT_PATIENCE_S == erlang_a.DEFAULT_PATIENCE_S == patience
