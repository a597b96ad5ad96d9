"""Times as people read them: in the call center's zone (``routing.timezone``), to the second, never UTC
with microseconds."""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo


def local_dt(value: datetime | float, tz: tzinfo) -> datetime:
    """An epoch or a datetime (naive = UTC, as cti stores them) in zone ``tz``, microseconds dropped."""
    if isinstance(value, datetime):
        dt = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    else:
        dt = datetime.fromtimestamp(value, timezone.utc)
    return dt.astimezone(tz).replace(microsecond=0)


def local_iso(value: datetime | float, tz: tzinfo) -> str:
    """ISO 8601 with the zone's offset, to the second: ``2026-12-08T09:30:00+08:00``."""
    return local_dt(value, tz).isoformat(timespec="seconds")


def local_text(value: datetime | float, tz: tzinfo, with_date: bool = True) -> str:
    """``2026-12-08 09:30`` (or ``09:30``) in zone ``tz``, for pages, CSV cells and terminals."""
    return local_dt(value, tz).strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")
