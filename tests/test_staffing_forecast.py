"""Forecast: same weekday over recent weeks, weights, closed days, and marketing-event uplifts."""

from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from cti.stats.forecast import Uplift, forecast_day, load_mean_talk_s, load_offered_times, read_forecast, read_uplifts

UTC = timezone.utc
TARGET = date(2026, 11, 30)  # a Monday


def calls_at(day: date, hh: int, mm: int, n: int, tz=UTC) -> list[datetime]:
    return [datetime(day.year, day.month, day.day, hh, mm, i % 60, tzinfo=tz) for i in range(n)]


def history() -> list[datetime]:
    """Four past Mondays: 09:00 slot 10, 12, 14, 16 calls (most recent first), 09:30 slot 4 each week;
    a Tuesday that must be ignored."""
    out: list[datetime] = []
    for k, n in zip(range(1, 5), (10, 12, 14, 16)):
        d = TARGET - timedelta(days=7 * k)
        out += calls_at(d, 9, 0, n) + calls_at(d, 9, 35, 4)
    out += calls_at(TARGET - timedelta(days=6), 9, 0, 100)
    return out


def slot(fc, hh: int, mm: int):
    return next(f for f in fc if f.start.time() == time(hh, mm))


def test_same_weekday_average() -> None:
    fc = forecast_day(history(), TARGET, UTC, 30, weeks=4, open_=time(8, 0), close=time(10, 0))
    assert [f.start.strftime("%H:%M") for f in fc] == ["08:00", "08:30", "09:00", "09:30"]
    assert slot(fc, 9, 0).calls == pytest.approx((10 + 12 + 14 + 16) / 4)
    assert slot(fc, 9, 0).history == (10, 12, 14, 16)
    assert slot(fc, 9, 30).calls == 4
    assert slot(fc, 8, 0).calls == 0


def test_fewer_weeks_and_recency_weights() -> None:
    fc = forecast_day(history(), TARGET, UTC, 30, weeks=2, open_=time(9, 0), close=time(9, 30))
    assert fc[0].calls == pytest.approx(11)
    fc = forecast_day(history(), TARGET, UTC, 30, weeks=4, weights=[4, 3, 2, 1], open_=time(9, 0), close=time(9, 30))
    assert fc[0].calls == pytest.approx((4 * 10 + 3 * 12 + 2 * 14 + 1 * 16) / 10)


def test_a_closed_day_is_left_out_not_counted_as_zero() -> None:
    rows = [ts for ts in history() if ts.date() != TARGET - timedelta(days=14)]  # the 12-call week vanishes
    fc = forecast_day(rows, TARGET, UTC, 30, weeks=4, open_=time(9, 0), close=time(9, 30))
    assert fc[0].calls == pytest.approx((10 + 14 + 16) / 3)
    assert forecast_day([], TARGET, UTC, 30, open_=time(9, 0), close=time(10, 0))[0].calls == 0


def test_uplift_on_the_target_day_multiplies_and_past_events_are_deflated() -> None:
    up = [
        Uplift(TARGET, 1.5, time(9, 0), time(9, 30), "campaign"),
        Uplift(TARGET - timedelta(days=7), 2.0, note="last week's mailing, all day"),
    ]
    fc = forecast_day(history(), TARGET, UTC, 30, weeks=4, uplifts=up, open_=time(9, 0), close=time(10, 0))
    base = (10 / 2 + 12 + 14 + 16) / 4
    assert slot(fc, 9, 0).baseline == pytest.approx(base)
    assert slot(fc, 9, 0).uplift == 1.5 and slot(fc, 9, 0).calls == pytest.approx(base * 1.5)
    assert slot(fc, 9, 30).uplift == 1.0 and slot(fc, 9, 30).calls == pytest.approx((2 + 4 + 4 + 4) / 4)


def test_intervals_are_local_time() -> None:
    sh = ZoneInfo("Asia/Shanghai")
    rows = [ts.astimezone(UTC) for ts in calls_at(TARGET - timedelta(days=7), 0, 10, 8, tz=sh)]  # 16:10 UTC, Sunday
    fc = forecast_day(rows, TARGET, sh, 60, weeks=1, open_=time(0, 0), close=time(1, 0))
    assert fc[0].calls == 8 and fc[0].start.tzinfo == sh


def test_csv_inputs() -> None:
    ups = read_uplifts(io.StringIO("date,factor,start,end,note\n2026-11-11,1.6,09:00,12:00,Singles' Day\n2026-11-12,1.2,,,\n"))
    assert ups == [Uplift(date(2026, 11, 11), 1.6, time(9), time(12), "Singles' Day"), Uplift(date(2026, 11, 12), 1.2)]
    assert read_forecast(io.StringIO("start,calls\n09:30,80\n09:00,100\n")) == [(time(9, 0), 100.0), (time(9, 30), 80.0)]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        forecast_day([], TARGET, weeks=0)
    with pytest.raises(ValueError):
        forecast_day([], TARGET, weeks=2, weights=[1])
    with pytest.raises(ValueError):
        forecast_day([], TARGET, interval_min=7)


async def test_loaders(engine) -> None:
    from cti.db.tables import calls

    d = TARGET - timedelta(days=7)
    base = datetime(d.year, d.month, d.day, 9, 0, tzinfo=UTC)
    rows = [
        {"uniqueid": "a", "started_at": base, "queued_at": base + timedelta(seconds=20), "outcome": "answered", "talk_s": 100.0, "queue": "mobile"},
        {"uniqueid": "b", "started_at": base, "queued_at": base + timedelta(seconds=20), "outcome": "abandoned", "queue": "mobile"},
        {"uniqueid": "c", "started_at": base, "outcome": "ivr_hangup"},
        {"uniqueid": "d", "started_at": base + timedelta(minutes=31), "outcome": "answered", "talk_s": 300.0, "queue": "complaints"},
    ]
    keys = ("uniqueid", "started_at", "queued_at", "outcome", "talk_s", "queue")
    async with engine.begin() as conn:
        await conn.execute(calls.insert(), [{k: r.get(k) for k in keys} for r in rows])
    times = await load_offered_times(engine, base - timedelta(days=1), base + timedelta(days=1))
    assert sorted(times) == [base + timedelta(seconds=20)] * 2 + [base + timedelta(minutes=31)]
    assert await load_offered_times(engine, base - timedelta(days=1), base + timedelta(days=1), queue="complaints") == [base + timedelta(minutes=31)]
    fc = forecast_day(times, TARGET, UTC, 30, weeks=1, open_=time(9), close=time(10))
    assert [f.calls for f in fc] == [2, 1]
    assert await load_mean_talk_s(engine, base - timedelta(days=1), base + timedelta(days=1)) == pytest.approx(200)
    assert await load_mean_talk_s(engine, base + timedelta(days=1), base + timedelta(days=2)) is None
