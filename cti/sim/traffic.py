"""Simulated traffic of an 800 line: Poisson arrivals with an hourly profile, known and unknown callers.

Pure parts (:func:`arrivals`, :class:`CallerPool`) take a ``random.Random``; the same seed gives
the same day. :func:`run_traffic` drives a :class:`~cti.sim.pbx.SimPbx` on its (possibly fast) clock.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional, Sequence

import structlog

if TYPE_CHECKING:
    from cti.sim.pbx import SimPbx

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Segment:
    start: float  # hour of day, e.g. 8.0
    end: float  # e.g. 20.5
    weight: float


#: A real 800 line: open 8:00-20:30, peaks 9-10 and 14-15 (weights are relative call volumes).
DEFAULT_PROFILE: tuple[Segment, ...] = (
    Segment(8, 9, 5), Segment(9, 10, 11), Segment(10, 11, 9), Segment(11, 12, 8), Segment(12, 13, 6),
    Segment(13, 14, 7), Segment(14, 15, 11), Segment(15, 16, 9), Segment(16, 17, 8), Segment(17, 18, 7),
    Segment(18, 19, 6), Segment(19, 20, 5), Segment(20, 20.5, 2),
)


def arrivals(calls_per_day: float, rng: random.Random, *, day_start: float = 0.0,
             profile: Sequence[Segment] = DEFAULT_PROFILE) -> Iterator[float]:
    """Arrival times (epoch seconds) of one day starting at midnight ``day_start``.

    A non-homogeneous Poisson process, piecewise constant: segment ``s`` gets an expected
    ``calls_per_day * weight_s / sum(weights)`` calls, spread by exponential inter-arrival times.
    """
    total = sum(s.weight for s in profile)
    if total <= 0 or calls_per_day <= 0:
        return
    for seg in profile:
        length = (seg.end - seg.start) * 3600.0
        rate = calls_per_day * seg.weight / total / length  # calls per second
        t = 0.0
        while True:
            t += rng.expovariate(rate)
            if t >= length:
                break
            yield day_start + seg.start * 3600.0 + t


def hourly_counts(times: Sequence[float], day_start: float = 0.0) -> list[int]:
    """Calls per hour of day (24 buckets)."""
    counts = [0] * 24
    for t in times:
        hour = int(((t - day_start) % 86400) // 3600)
        counts[hour] += 1
    return counts


@dataclass(frozen=True)
class Caller:
    number: str
    name: str
    known: bool


class CallerPool:
    """Who calls: a share of known customers (numbers from a list) and random unknown numbers."""

    UNKNOWN_NAMES = ("", "", "", "WIRELESS CALLER", "Zhang", "Liu Wei", "Chen Hao")

    def __init__(self, known: Sequence[tuple[str, str]], rng: random.Random, unknown_share: float = 0.4) -> None:
        self.known = list(known)
        self.rng = rng
        self.unknown_share = unknown_share if self.known else 1.0

    def pick(self) -> Caller:
        if self.rng.random() >= self.unknown_share:
            number, name = self.rng.choice(self.known)
            return Caller(number, name, True)
        if self.rng.random() < 0.8:
            number = "1" + self.rng.choice("3456789") + "".join(self.rng.choice("0123456789") for _ in range(9))
        else:
            area = self.rng.choice(["010", "020", "021", "0755", "0571"])
            number = area + self.rng.choice("2345678") + "".join(self.rng.choice("0123456789") for _ in range(7))
        return Caller(number, self.rng.choice(self.UNKNOWN_NAMES), False)


def load_callers(path: str | Path) -> list[tuple[str, str]]:
    """Known callers from a CSV file: ``number,name`` per line (a header line is skipped)."""
    result = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if not row or not row[0].strip() or not any(ch.isdigit() for ch in row[0]):
                continue
            result.append((row[0].strip(), row[1].strip() if len(row) > 1 else ""))
    return result


def midnight(epoch: float, tz: Optional[tzinfo] = None) -> float:
    """Midnight of the day that contains ``epoch`` (in ``tz``; default: the machine's local time)."""
    dt = datetime.fromtimestamp(epoch, tz)
    return dt.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


async def run_traffic(pbx: "SimPbx", calls_per_day: float, callers: CallerPool, *,
                      profile: Sequence[Segment] = DEFAULT_PROFILE, days: Optional[int] = None,
                      rng: Optional[random.Random] = None, tz: Optional[tzinfo] = None) -> int:
    """Place calls on ``pbx`` at Poisson arrival times of its clock, day after day (the profile's hours
    in ``tz``, default the machine's local time). Returns the count."""
    rng = rng or pbx.rng
    placed = 0
    started = pbx.clock.now()
    day = midnight(started, tz)
    done_days = 0
    while days is None or done_days < days:
        for at in arrivals(calls_per_day, rng, day_start=day, profile=profile):
            if at < started:
                continue  # the simulation started later in the day
            await pbx.clock.sleep(at - pbx.clock.now())  # late (a busy loop) is placed late, not dropped
            caller = callers.pick()
            pbx.place_call(caller.number, caller.name)
            placed += 1
        done_days += 1
        day = midnight((datetime.fromtimestamp(day, tz) + timedelta(days=1, hours=12)).timestamp(), tz)
        log.info("sim.traffic.day_done", placed=placed)
    return placed


def start_of_day(hhmm: str, base: Optional[float] = None) -> float:
    """Epoch of today's ``HH:MM`` (local time): where a simulated day starts."""
    hours, _, minutes = hhmm.partition(":")
    dt = datetime.fromtimestamp(base) if base is not None else datetime.now()
    return dt.replace(hour=int(hours), minute=int(minutes or 0), second=0, microsecond=0).timestamp()


def expected_share(profile: Sequence[Segment], hour: int) -> float:
    """Fraction of the day's calls expected in clock hour ``hour`` (for tests and reports)."""
    total = sum(s.weight for s in profile)
    share = 0.0
    for seg in profile:
        overlap = max(0.0, min(seg.end, hour + 1) - max(seg.start, hour))
        if overlap:
            share += seg.weight * overlap / (seg.end - seg.start) / total
    return share if not math.isnan(share) else 0.0
