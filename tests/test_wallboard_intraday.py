"""The wallboard's intraday chart numbers and its tile colours (thresholds from [wallboard])."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from cti.config import ConfigError, load_settings
from cti.stats.intraday import intraday
from cti.stats.live import EndedCall, Period, Targets, amber_flags, level, red_flags
from cti.stats.profile import seed_day

TZ = ZoneInfo("Asia/Shanghai")
MIDNIGHT = datetime(2026, 12, 8, tzinfo=TZ).timestamp()


def at(hhmm: str) -> float:
    h, m = map(int, hhmm.split(":"))
    return MIDNIGHT + h * 3600 + m * 60


def test_calls_fall_in_the_local_half_hour_they_ended_in_against_the_seed_forecast():
    calls = [EndedCall(at("09:05"), "mobile", "answered", 5, 60), EndedCall(at("09:29"), "mobile", "abandoned", 40, None),
             EndedCall(at("09:31"), "mobile", "answered", 5, 60), EndedCall(at("09:59"), "mobile", "timeout", 300, None)]
    out = intraday(calls, MIDNIGHT, at("10:10"), TZ, 30, seed_day(2000, 30), 0.8)
    rows = {r["start"]: r for r in out["intervals"]}
    assert out["answer_target"] == 0.8 and out["interval_min"] == 30
    assert rows["09:00"] == {"start": "09:00", "offered": 2, "answered": 1, "abandoned": 1, "answer_rate": 0.5,
                             "forecast": round(seed_day(2000, 30)[2].calls, 1)}
    assert rows["09:30"]["offered"] == 2 and rows["09:30"]["answered"] == 1 and rows["09:30"]["abandoned"] == 0
    assert rows["10:00"]["offered"] == 0 and rows["10:00"]["answer_rate"] is None
    starts = [r["start"] for r in out["intervals"]]
    assert starts[0] == "08:00" and starts[-1] == "20:00"  # the plan's day, without gaps
    assert len(starts) == 25


def test_without_forecast_the_chart_spans_the_calls_up_to_now():
    calls = [EndedCall(at("07:10"), "q", "answered", 1, 1)]
    out = intraday(calls, MIDNIGHT, at("08:40"), TZ, 30)
    assert [r["start"] for r in out["intervals"]] == ["07:00", "07:30", "08:00", "08:30"]
    assert all(r["forecast"] is None for r in out["intervals"])


def period(offered: int, answered: int, abandoned: int) -> Period:
    return Period(offered, answered, abandoned, 0, answered, answered / offered, answered / offered,
                  abandoned / offered, 10.0, 10.0, 60.0)


def test_tile_level_follows_the_thresholds():
    t = Targets(answer_rate=0.8, service_level=None, abandon_rate=0.2, longest_wait_s=120, warn_margin=0.05, warn_wait_s=60)
    empty = Period(0, 0, 0, 0, 0, None, None, None, None, None, None)
    good = period(100, 95, 5)
    close = period(100, 82, 18)  # answer rate 82%: within 5 points of 80; abandon 18%: within 5 of 20
    bad = period(100, 70, 30)
    assert level(red_flags(0, 0, good, empty, t), amber_flags(0, 0, good, empty, t)) == "green"
    assert amber_flags(0, 0, close, empty, t) == ["today.answer_rate", "today.abandon_rate"]
    assert level(red_flags(0, 0, close, empty, t), amber_flags(0, 0, close, empty, t)) == "amber"
    assert level(red_flags(0, 0, bad, empty, t), amber_flags(0, 0, bad, empty, t)) == "red"
    assert amber_flags(0, 0, bad, empty, t) == []  # red, not amber too
    assert level([], amber_flags(2, 90, good, empty, t)) == "amber"  # someone waited 90 s > 60
    assert red_flags(2, 130, good, empty, t) == ["longest_wait"]


def test_thresholds_come_from_the_wallboard_section(tmp_path):
    cfg = tmp_path / "cti.toml"
    cfg.write_text("[wallboard]\nanswer_rate = 0.9\nabandon_rate = -1\nwarn_margin = 0.02\nmin_offered = 3\n")
    s = load_settings(cfg, env={"CTI_WALLBOARD_LONGEST_WAIT_S": "30"})
    t = Targets.from_config(s.wallboard)
    assert (t.answer_rate, t.abandon_rate, t.warn_margin, t.min_offered, t.longest_wait_s) == (0.9, None, 0.02, 3, 30.0)
    cfg.write_text("[wallboard]\nanswer_rate = 80\n")
    with pytest.raises(ConfigError, match="wallboard.answer_rate"):
        load_settings(cfg, env={})
