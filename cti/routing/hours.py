"""Business hours: parse ``{"0": "08:00-20:30", ...}`` (0 = Monday) and test a local time."""

from __future__ import annotations

from datetime import datetime, time
from typing import Mapping

Hours = dict[int, tuple[time, time]]


def parse_hours(spec: Mapping[str, str]) -> Hours:
    """Parse a weekday -> "HH:MM-HH:MM" table; raise ValueError naming the bad entry."""
    hours: Hours = {}
    for day, span in spec.items():
        try:
            weekday = int(day)
            if not 0 <= weekday <= 6:
                raise ValueError
        except ValueError:
            raise ValueError(f"weekday {day!r} (expected 0=Monday .. 6=Sunday)") from None
        try:
            start_s, end_s = span.split("-")
            start, end = time.fromisoformat(start_s.strip()), time.fromisoformat(end_s.strip())
        except ValueError:
            raise ValueError(f"{day}: {span!r} (expected HH:MM-HH:MM)") from None
        if start.second or start.microsecond or end.second or end.microsecond:
            raise ValueError(f"{day}: {span!r} (expected whole minutes, HH:MM-HH:MM)")
        if end <= start:
            raise ValueError(f"{day}: {span!r} ends before it starts")
        hours[weekday] = (start, end)
    return hours


def is_open(hours: Hours, local_now: datetime) -> bool:
    """True when ``local_now`` (already in the call center's zone) is inside business hours."""
    span = hours.get(local_now.weekday())
    if span is None:
        return False
    return span[0] <= local_now.time() < span[1]
