"""Reports from the ``calls`` table: pure aggregation over rows, plus a small SQLAlchemy Core loader.

Definitions (shares are of *offered* calls, as in the seed's "80% of calls answered"):

- **offered**: a call that reached a queue: outcome ``answered``, ``transferred``, ``abandoned`` or ``timeout``.
  ``ivr_hangup`` (gone before queueing) is counted apart and is not offered.
- **answered**: outcome ``answered`` or ``transferred`` (an agent took it, then transferred it).
  **abandoned**: the caller hung up in the queue. **timeout**: the queue gave up on the caller.
- **answer rate** = answered / offered; **abandon rate** = abandoned / offered;
  **service level** = answered within ``sl_seconds`` of entering the queue / offered.
- **AHT**: mean talk time of answered calls (``talk_s``, else ``ended_at - answered_at``); the calls table holds
  no wrap-up time, so AHT here is talk time. **ASA**: mean wait of answered calls.
- A call belongs to the interval in which it entered the queue (``queued_at``, else ``started_at``).
- **busy seconds**: talk time clipped to the interval (a call spanning two intervals counts in both).
  **occupancy** = busy seconds / staffed agent-seconds. The calls table does not know who was logged in, so
  unless ``staffed`` gives agent counts per interval, staffed time is approximated by the agents who handled
  at least one call in the interval × its length (an upper bound on true occupancy).

Times: stored datetimes without a zone are UTC (as cti writes them); reports are cut in the call center's zone.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence, TextIO

OFFERED = frozenset({"answered", "transferred", "abandoned", "timeout"})
ANSWERED = frozenset({"answered", "transferred"})
ALL = "*"


@dataclass(frozen=True)
class CallRow:
    """The columns of one ``calls`` row that reports need."""

    started_at: datetime
    outcome: str | None
    queue: str | None = None
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    wait_s: float | None = None
    talk_s: float | None = None
    agent_id: int | None = None

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> "CallRow":
        return cls(**{f.name: m.get(f.name) for f in fields(cls)})


@dataclass(frozen=True)
class Stats:
    """One line of a report. ``start``/``end`` bound the period; ``queue`` and ``agent_id`` are ``"*"`` when
    the line covers all of them. Rates are ``None`` when nothing was offered (no division by zero)."""

    start: datetime
    end: datetime
    queue: str
    agent_id: int | str
    offered: int
    answered: int
    abandoned: int
    timeout: int
    ivr_hangup: int
    answered_within: int
    answer_rate: float | None
    abandon_rate: float | None
    service_level: float | None
    aht_s: float | None
    asa_s: float | None
    busy_s: float
    staffed_agents: float
    occupancy: float | None
    sl_seconds: float


def as_utc(dt: datetime) -> datetime:
    """A stored timestamp as an aware UTC datetime (naive ones are UTC)."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _entered(row: CallRow) -> datetime:
    return as_utc(row.queued_at or row.started_at)


def _wait(row: CallRow) -> float | None:
    if row.wait_s is not None:
        return float(row.wait_s)
    if row.answered_at is not None:
        return max(0.0, (as_utc(row.answered_at) - _entered(row)).total_seconds())
    return None


def _talk_span(row: CallRow) -> tuple[datetime, datetime] | None:
    if row.outcome not in ANSWERED or row.answered_at is None:
        return None
    start = as_utc(row.answered_at)
    if row.talk_s is not None:
        return start, start + timedelta(seconds=float(row.talk_s))
    if row.ended_at is not None:
        return start, max(start, as_utc(row.ended_at))
    return None


def _talk_seconds(row: CallRow) -> float | None:
    if row.outcome not in ANSWERED:
        return None
    if row.talk_s is not None:
        return float(row.talk_s)
    span = _talk_span(row)
    return (span[1] - span[0]).total_seconds() if span else None


def floor_local(dt: datetime, tz: tzinfo, minutes: int) -> datetime:
    """Start of the ``minutes``-long interval (aligned on local midnight) holding ``dt``, in zone ``tz``."""
    local = as_utc(dt).astimezone(tz)
    m = (local.hour * 60 + local.minute) // minutes * minutes
    return local.replace(hour=m // 60, minute=m % 60, second=0, microsecond=0)


def _summarize(
    rows: Sequence[CallRow],
    start: datetime,
    end: datetime,
    queue: str,
    agent: int | str,
    sl_seconds: float,
    busy_rows: Iterable[CallRow],
    staffed: float | None,
) -> Stats:
    offered = answered = abandoned = timeouts = ivr = within = 0
    talks: list[float] = []
    waits: list[float] = []
    for r in rows:
        if r.outcome == "ivr_hangup":
            ivr += 1
            continue
        if r.outcome not in OFFERED:
            continue
        offered += 1
        if r.outcome in ANSWERED:
            answered += 1
            w = _wait(r)
            if w is not None:
                waits.append(w)
                if w <= sl_seconds:
                    within += 1
            t = _talk_seconds(r)
            if t is not None:
                talks.append(t)
        elif r.outcome == "abandoned":
            abandoned += 1
        else:
            timeouts += 1
    busy = 0.0
    agents: set[int] = set()
    for r in busy_rows:
        span = _talk_span(r)
        if span is None:
            continue
        overlap = (min(span[1], end) - max(span[0], start)).total_seconds()
        if overlap > 0 or (span[0] == span[1] and start <= span[0] < end):
            busy += max(0.0, overlap)
            if r.agent_id is not None:
                agents.add(r.agent_id)
    staffed_agents = float(staffed) if staffed is not None else float(len(agents))
    capacity = staffed_agents * (end - start).total_seconds()
    return Stats(
        start=start,
        end=end,
        queue=queue,
        agent_id=agent,
        offered=offered,
        answered=answered,
        abandoned=abandoned,
        timeout=timeouts,
        ivr_hangup=ivr,
        answered_within=within,
        answer_rate=answered / offered if offered else None,
        abandon_rate=abandoned / offered if offered else None,
        service_level=within / offered if offered else None,
        aht_s=sum(talks) / len(talks) if talks else None,
        asa_s=sum(waits) / len(waits) if waits else None,
        busy_s=busy,
        staffed_agents=staffed_agents,
        occupancy=min(1.0, busy / capacity) if capacity > 0 else None,
        sl_seconds=sl_seconds,
    )


def interval_report(
    rows: Iterable[CallRow],
    tz: tzinfo = timezone.utc,
    interval_min: int = 30,
    sl_seconds: float = 20.0,
    by_queue: bool = False,
    staffed: Mapping[datetime, float] | None = None,
) -> list[Stats]:
    """One line per interval that saw calls (and per queue if ``by_queue``), in time order.

    ``staffed`` maps an interval start (local, as in the output) to the agents logged in; without it,
    occupancy uses the agents who handled calls in that interval."""
    if interval_min <= 0 or 1440 % interval_min:
        raise ValueError("interval_min must divide a day (15, 30, 60, ...)")
    rows = list(rows)
    step = timedelta(minutes=interval_min)
    groups: dict[tuple[datetime, str], list[CallRow]] = defaultdict(list)
    busy: dict[tuple[datetime, str], list[CallRow]] = defaultdict(list)
    for r in rows:
        q = (r.queue or "") if by_queue else ALL
        groups[(floor_local(_entered(r), tz, interval_min), q)].append(r)
        span = _talk_span(r)
        if span is not None:
            s = floor_local(span[0], tz, interval_min)
            while True:
                busy[(s, q)].append(r)
                s = floor_local(s.astimezone(timezone.utc) + step, tz, interval_min)
                if s >= span[1]:
                    break
    keys = sorted(set(groups) | set(busy), key=lambda k: (k[0].astimezone(timezone.utc), k[1]))
    out = []
    for start, q in keys:
        end = floor_local(start.astimezone(timezone.utc) + step, tz, interval_min)
        st = None if staffed is None else staffed.get(start)
        out.append(_summarize(groups.get((start, q), []), start, end, q, ALL, sl_seconds, busy.get((start, q), []), st))
    return out


def _period_report(
    rows: Iterable[CallRow],
    key: Callable[[CallRow], Hashable],
    bounds: Callable[[Hashable], tuple[datetime, datetime]],
    label: Callable[[Hashable], tuple[str, int | str]],
    sl_seconds: float,
) -> list[Stats]:
    groups: dict[Hashable, list[CallRow]] = defaultdict(list)
    for r in rows:
        groups[key(r)].append(r)
    out = []
    for k in sorted(groups, key=repr):
        start, end = bounds(k)
        q, a = label(k)
        out.append(_summarize(groups[k], start, end, q, a, sl_seconds, groups[k], None))
    return out


def _day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    nxt = day + timedelta(days=1)
    return start, datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)


def daily_report(rows: Iterable[CallRow], tz: tzinfo = timezone.utc, sl_seconds: float = 20.0, by_queue: bool = False) -> list[Stats]:
    """One line per local day (and per queue if ``by_queue``). Occupancy uses agents with calls that day."""

    def key(r: CallRow) -> tuple[date, str]:
        return _entered(r).astimezone(tz).date(), ((r.queue or "") if by_queue else ALL)

    return sorted(
        _period_report(rows, key, lambda k: _day_bounds(k[0], tz), lambda k: (k[1], ALL), sl_seconds),
        key=lambda s: (s.start, s.queue),
    )


def _span(rows: Sequence[CallRow]) -> tuple[datetime, datetime]:
    times = [_entered(r) for r in rows]
    return (min(times), max(times)) if times else (datetime.min.replace(tzinfo=timezone.utc),) * 2


def queue_report(rows: Iterable[CallRow], sl_seconds: float = 20.0) -> list[Stats]:
    """One line per queue over the whole set of rows (``start``/``end``: first and last call entering)."""
    rows = list(rows)
    spans = {q: _span([r for r in rows if (r.queue or "") == q]) for q in {(r.queue or "") for r in rows}}
    out = _period_report(rows, lambda r: r.queue or "", lambda q: spans[q], lambda q: (q, ALL), sl_seconds)
    return sorted(out, key=lambda s: s.queue)


def agent_report(rows: Iterable[CallRow], tz: tzinfo = timezone.utc, interval_min: int = 30, sl_seconds: float = 20.0) -> list[Stats]:
    """One line per agent over the answered calls they took. Occupancy: their talk time over the
    intervals in which they took calls (the calls table has no login times)."""
    rows = [r for r in rows if r.agent_id is not None and r.outcome in ANSWERED]
    out = []
    for agent in sorted({r.agent_id for r in rows}):
        mine = [r for r in rows if r.agent_id == agent]
        s = _summarize(mine, *_span(mine), ALL, agent, sl_seconds, [], None)  # type: ignore[arg-type]
        active: set[datetime] = set()
        busy = 0.0
        for line in interval_report(mine, tz, interval_min, sl_seconds):
            if line.busy_s > 0:
                active.add(line.start)
                busy += line.busy_s
        capacity = len(active) * interval_min * 60.0
        out.append(
            Stats(**{**asdict(s), "busy_s": busy, "staffed_agents": 1.0 if active else 0.0, "occupancy": min(1.0, busy / capacity) if capacity else None})
        )
    return out


@dataclass(frozen=True)
class Peak:
    """A run of consecutive intervals whose offered calls are at least ``ratio`` × the mean busy interval."""

    start: datetime
    end: datetime
    offered: int
    busiest: datetime
    busiest_offered: int


def find_peaks(lines: Sequence[Stats], ratio: float = 1.25) -> list[Peak]:
    """Peaks in an interval report (one queue or all): the mean is over intervals that offered calls."""
    lines = sorted((s for s in lines if s.offered), key=lambda s: s.start)
    if not lines:
        return []
    mean = sum(s.offered for s in lines) / len(lines)
    peaks: list[Peak] = []
    run: list[Stats] = []

    def close() -> None:
        if run:
            top = max(run, key=lambda s: s.offered)
            peaks.append(Peak(run[0].start, run[-1].end, sum(s.offered for s in run), top.start, top.offered))
            run.clear()

    for s in lines:
        if s.offered >= ratio * mean:
            if run and run[-1].end != s.start:
                close()
            run.append(s)
        else:
            close()
    close()
    return peaks


CSV_FIELDS = [f.name for f in fields(Stats)]


def _fmt(v: Any, tz: tzinfo | None = None) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):  # ISO 8601 to the second, in the call center's zone when given
        return (as_utc(v).astimezone(tz) if tz is not None else v).replace(microsecond=0).isoformat()
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def write_csv(lines: Iterable[Stats], out: TextIO, tz: tzinfo | None = None) -> None:
    """Report lines as CSV with a header row; empty cells where a rate is undefined. Times to the second, in
    ``tz`` (the call center's zone) when given."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for s in lines:
        w.writerow([_fmt(getattr(s, f), tz) for f in CSV_FIELDS])


def to_csv(lines: Iterable[Stats], tz: tzinfo | None = None) -> str:
    buf = io.StringIO()
    write_csv(lines, buf, tz)
    return buf.getvalue()


def period_total(rows: Iterable[CallRow], start: datetime, end: datetime, sl_seconds: float = 20.0) -> Stats:
    """One line over all ``rows`` (all queues and agents) for the period [start, end)."""
    rows = list(rows)
    return _summarize(rows, start, end, ALL, ALL, sl_seconds, rows, None)


async def load_calls(engine: Any, start: datetime, end: datetime, queue: str | None = None) -> list[CallRow]:
    """Calls that started in [start, end) (UTC or aware datetimes), read with SQLAlchemy Core."""
    from sqlalchemy import select

    from cti.db.tables import calls

    cols = [calls.c[f.name] for f in fields(CallRow)]
    # Naive UTC bounds compare correctly on both SQLite (naive text) and PostgreSQL (timestamptz).
    lo, hi = as_utc(start), as_utc(end)
    stmt = select(*cols).where(calls.c.started_at >= lo, calls.c.started_at < hi).order_by(calls.c.started_at)
    if queue is not None:
        stmt = stmt.where(calls.c.queue == queue)
    async with engine.connect() as conn:
        result = await conn.execute(stmt)
        return [CallRow.from_mapping(m) for m in result.mappings()]
