"""Where the demo's simulated day resumes: a restarted demo's PBX clock never goes back.

A real Asterisk's uniqueids are its clock's seconds plus a counter that restarts with the process;
a simulated day that started again at 09:00 on every run would hand out the previous run's uniqueids.
The demo saves its simulated time at stop (``sim-clock`` in the data dir) and the next run goes on
from there (on the next day's ``HH:MM`` once the simulated working day is over).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog

log = structlog.get_logger(__name__)

CLOCK_FILE = "sim-clock"
#: How long a simulated working day lasts before a restart moves on to the next day.
WORKDAY_S = 10 * 3600.0
DAY_S = 86400.0


def day_start(hhmm: str, timezone: str, now: float | None = None) -> float:
    """Epoch of today's ``HH:MM`` in the call center's ``timezone`` (where a simulated day starts)."""
    hours, _, minutes = hhmm.partition(":")
    local = datetime.fromtimestamp(time.time() if now is None else now, ZoneInfo(timezone))
    return local.replace(hour=int(hours), minute=int(minutes or 0), second=0, microsecond=0).timestamp()


def resume_epoch(data_dir: Path, day_start: float) -> float:
    """The simulated clock's start: ``day_start`` (today's HH:MM), or just after the last run's time."""
    try:
        saved = float((data_dir / CLOCK_FILE).read_text().strip())
    except (OSError, ValueError):
        return day_start
    start = day_start
    while start + WORKDAY_S <= saved:
        start += DAY_S
    return max(start, saved + 1.0)


def save_epoch(data_dir: Path, sim_now: float) -> None:
    """Remember the simulated time the demo stopped at."""
    try:
        (data_dir / CLOCK_FILE).write_text(f"{sim_now:.3f}\n")
    except OSError as exc:
        log.warning("demo.sim_clock_not_saved", path=str(data_dir / CLOCK_FILE), error=str(exc))
