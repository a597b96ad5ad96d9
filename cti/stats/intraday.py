"""Today's calls per interval against the staffing plan's forecast: the wallboard's intraday chart, as numbers.

Pure: takes the calls that ended today (:class:`cti.stats.live.EndedCall`, a call counts in the interval in
which it *ended*, as on the rest of the board), the day's start, the call center's zone and the forecast slots
(:func:`cti.stats.profile.seed_day`, the day ``cti staffing plan --seed`` plans for). Intervals run without a
gap from the first forecast slot or call to the last forecast slot or the current interval, whichever is later.
"""

from __future__ import annotations

from datetime import datetime, time, timezone, tzinfo
from typing import Any, Iterable, Sequence

from cti.stats.live import EndedCall
from cti.stats.profile import Slot
from cti.stats.reports import ANSWERED


def _minute(t: float, tz: tzinfo) -> int:
    d = datetime.fromtimestamp(t, timezone.utc).astimezone(tz)
    return d.hour * 60 + d.minute


def intraday(calls: Iterable[EndedCall], day_start: float, now: float, tz: tzinfo, interval_min: int = 30,
             forecast: Sequence[Slot] = (), answer_target: float | None = 0.8) -> dict[str, Any]:
    """``{"interval_min", "answer_target", "intervals": [{start "HH:MM", offered, answered, abandoned,
    answer_rate (None when nothing offered), forecast (None outside the plan)}]}``."""
    if interval_min <= 0 or 1440 % interval_min:
        raise ValueError("interval_min must divide a day")
    counts: dict[int, list[int]] = {}
    for c in calls:
        if c.ended_at < day_start or c.ended_at > now:
            continue
        k = _minute(c.ended_at, tz) // interval_min
        row = counts.setdefault(k, [0, 0, 0])
        row[0] += 1
        row[1] += c.outcome in ANSWERED
        row[2] += c.outcome == "abandoned"
    planned: dict[int, float] = {}
    for s in forecast:
        k = (s.start.hour * 60 + s.start.minute) // interval_min
        planned[k] = planned.get(k, 0.0) + s.calls
    keys = set(counts) | set(planned)
    if now >= day_start:
        keys.add(_minute(now, tz) // interval_min)
    out = []
    if keys:
        for k in range(min(keys), max(keys) + 1):
            offered, answered, abandoned = counts.get(k, (0, 0, 0))
            m = k * interval_min
            out.append({"start": time(m // 60, m % 60).strftime("%H:%M"), "offered": offered, "answered": answered,
                        "abandoned": abandoned, "answer_rate": answered / offered if offered else None,
                        "forecast": round(planned[k], 1) if k in planned else None})
    return {"interval_min": interval_min, "answer_target": answer_target, "intervals": out}
