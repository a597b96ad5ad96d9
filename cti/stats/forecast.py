"""Forecast of offered calls per interval: the same weekday over recent weeks, with marketing-event uplifts.

For a target day D, week k (k = 1..weeks) contributes the calls of D - 7k, counted per local interval. A past
day on which an uplift was in force is first divided by that uplift (so last month's campaign does not inflate
the baseline); a past day without any call at all (closed, holiday, missing data) is left out. The baseline is
the weighted mean over the weeks kept (equal weights unless given, most recent week first), and the uplifts
of day D multiply it. Pure functions over timestamps; :func:`load_offered_times` reads them from ``calls``.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, Iterable, Sequence, TextIO

from cti.stats.reports import OFFERED, as_utc, floor_local


@dataclass(frozen=True)
class Uplift:
    """Expected volume × ``factor`` on ``day`` (local), for the whole day or for [start, end) of it."""

    day: date
    factor: float
    start: time | None = None
    end: time | None = None
    note: str = ""

    def applies(self, day: date, at: time) -> bool:
        if day != self.day:
            return False
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)


@dataclass(frozen=True)
class IntervalForecast:
    """Forecast for one interval: ``calls`` = ``baseline`` × ``uplift``; ``history`` holds the (deflated)
    counts of the weeks used, most recent first."""

    start: datetime
    calls: float
    baseline: float
    uplift: float
    history: tuple[float, ...]


def uplift_factor(uplifts: Iterable[Uplift], day: date, at: time) -> float:
    """Product of the uplifts in force on ``day`` at ``at`` (1.0 when none)."""
    f = 1.0
    for u in uplifts:
        if u.applies(day, at):
            f *= u.factor
    return f


def _slot_times(interval_min: int, open_: time | None, close: time | None) -> list[time]:
    lo = 0 if open_ is None else open_.hour * 60 + open_.minute
    hi = 1440 if close is None else close.hour * 60 + close.minute or 1440
    first = lo // interval_min * interval_min
    return [time(m // 60, m % 60) for m in range(first, hi, interval_min)]


def forecast_day(
    times: Iterable[datetime],
    day: date,
    tz: tzinfo = timezone.utc,
    interval_min: int = 30,
    weeks: int = 4,
    weights: Sequence[float] | None = None,
    uplifts: Sequence[Uplift] = (),
    open_: time | None = None,
    close: time | None = None,
) -> list[IntervalForecast]:
    """Forecast offered calls per interval of ``day`` from the times calls were offered (``times``).

    ``open_``/``close`` bound the intervals returned (default: the whole day)."""
    if weeks < 1:
        raise ValueError("weeks must be at least 1")
    if interval_min <= 0 or 1440 % interval_min:
        raise ValueError("interval_min must divide a day")
    w = list(weights) if weights is not None else [1.0] * weeks
    if len(w) != weeks or any(x < 0 for x in w) or sum(w) <= 0:
        raise ValueError("weights: one non-negative weight per week, not all zero")
    past = [day - timedelta(days=7 * k) for k in range(1, weeks + 1)]
    wanted = set(past)
    counts: dict[date, Counter[time]] = {d: Counter() for d in past}
    for ts in times:
        start = floor_local(ts, tz, interval_min)
        if start.date() in wanted:
            counts[start.date()][start.time().replace(tzinfo=None)] += 1
    kept = [(d, wk) for d, wk in zip(past, w) if sum(counts[d].values()) > 0]
    total_w = sum(wk for _, wk in kept)
    out = []
    for slot in _slot_times(interval_min, open_, close):
        hist = tuple(counts[d][slot] / uplift_factor(uplifts, d, slot) for d, _ in kept)
        base = sum(h * wk for h, (_, wk) in zip(hist, kept)) / total_w if total_w > 0 else 0.0
        up = uplift_factor(uplifts, day, slot)
        start = datetime.combine(day, slot, tzinfo=tz)
        out.append(IntervalForecast(start=start, calls=base * up, baseline=base, uplift=up, history=hist))
    return out


def read_uplifts(f: TextIO) -> list[Uplift]:
    """Uplifts from CSV with a header ``date,factor[,start,end,note]`` (``2026-11-11,1.6,09:00,12:00,Singles' Day``)."""
    out = []
    for row in csv.DictReader(f):
        out.append(
            Uplift(
                day=date.fromisoformat(row["date"].strip()),
                factor=float(row["factor"]),
                start=time.fromisoformat(row["start"].strip()) if (row.get("start") or "").strip() else None,
                end=time.fromisoformat(row["end"].strip()) if (row.get("end") or "").strip() else None,
                note=(row.get("note") or "").strip(),
            )
        )
    return out


def read_forecast(f: TextIO) -> list[tuple[time, float]]:
    """A ready-made forecast from CSV with a header ``start,calls`` (``start`` as ``HH:MM``)."""
    out = []
    for row in csv.DictReader(f):
        out.append((time.fromisoformat(row["start"].strip()), float(row["calls"])))
    out.sort()
    return out


async def load_offered_times(engine: Any, start: datetime, end: datetime, queue: str | None = None) -> list[datetime]:
    """When each offered call of [start, end) entered its queue (``queued_at``, else ``started_at``), in UTC."""
    from sqlalchemy import select

    from cti.db.tables import calls

    stmt = select(calls.c.started_at, calls.c.queued_at).where(
        calls.c.started_at >= as_utc(start), calls.c.started_at < as_utc(end), calls.c.outcome.in_(sorted(OFFERED))
    )
    if queue is not None:
        stmt = stmt.where(calls.c.queue == queue)
    async with engine.connect() as conn:
        result = await conn.execute(stmt)
        return [as_utc(q or s) for s, q in result.all()]


async def load_mean_talk_s(engine: Any, start: datetime, end: datetime, queue: str | None = None) -> float | None:
    """Mean talk time of the answered calls of [start, end), or None when there were none."""
    from sqlalchemy import func, select

    from cti.db.tables import calls

    stmt = select(func.avg(calls.c.talk_s)).where(
        calls.c.started_at >= as_utc(start), calls.c.started_at < as_utc(end), calls.c.outcome.in_(["answered", "transferred"])
    )
    if queue is not None:
        stmt = stmt.where(calls.c.queue == queue)
    async with engine.connect() as conn:
        v = (await conn.execute(stmt)).scalar()
    return float(v) if v is not None else None
