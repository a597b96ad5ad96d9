"""A reused (server, uniqueid): Asterisk's uniqueids are the channel's creation time plus a counter
that restarts with the process, so a PBX whose clock jumped back (or a restarted simulator) can give a
new call the uniqueid of an old one. Call rows are upserted by (server, uniqueid) (replays and cluster
failover rely on it for the *same* call), so the old, ended row is set aside first: it keeps its id
(tickets and wrap-up history stay linked) and gets the uniqueid ``<uniqueid>#<id>``.

The same call seen by another node starts within seconds of the stored start and never after the
stored end; a different call starts after the stored one ended (``AFTER_END_S``), or long before it
started (the clock of the node that recorded it was behind, ``BEFORE_START_S``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

import structlog
from sqlalchemy import select, update

from cti.db.tables import calls

log = structlog.get_logger(__name__)

#: A start this long after the stored call's end is another call.
AFTER_END_S = 60.0
#: A start this long before the stored call's start is another call.
BEFORE_START_S = 3600.0


def epoch(v: datetime | float | None) -> float | None:
    """Epoch seconds of a record or column time (naive datetimes are UTC, as the database stores them)."""
    if v is None or isinstance(v, (int, float)):
        return v
    if v.tzinfo is None:
        v = v.replace(tzinfo=timezone.utc)
    return v.timestamp()


def is_another_call(stored_start: float | None, stored_end: float | None, start: float | None) -> bool:
    """Whether a call starting at ``start`` is not the stored (ended) call with the same uniqueid."""
    if stored_end is None or start is None:
        return False
    if start > stored_end + AFTER_END_S:
        return True
    return stored_start is not None and start < stored_start - BEFORE_START_S


def aside_uniqueid(uniqueid: str, row_id: int) -> str:
    return f"{uniqueid}#{row_id}"


async def set_aside_reused(conn: Any, starts: Iterable[tuple[str, str, Any]]) -> int:
    """For each (server, uniqueid, start) whose stored row is an ended, different call: rename that row.

    ``conn`` is a connection or session inside a transaction; returns the rows set aside."""
    wanted = {(server, uid): epoch(start) for server, uid, start in starts}
    if not wanted:
        return 0
    res = await conn.execute(
        select(calls.c.id, calls.c.server, calls.c.uniqueid, calls.c.started_at, calls.c.ended_at)
        .where(calls.c.uniqueid.in_({uid for _, uid in wanted}), calls.c.ended_at.is_not(None)))
    moved = 0
    for row in res.all():
        key = (row.server, row.uniqueid)
        if key not in wanted:
            continue
        start = wanted[key]
        if not is_another_call(epoch(row.started_at), epoch(row.ended_at), start):
            continue
        new_uid = aside_uniqueid(row.uniqueid, row.id)
        await conn.execute(update(calls).where(calls.c.id == row.id).values(uniqueid=new_uid))
        log.warning("recorder.uniqueid_reused", server=row.server, uniqueid=row.uniqueid, previous_call_id=row.id,
                    previous_started_at=str(row.started_at), previous_ended_at=str(row.ended_at),
                    new_started_at=start, previous_set_aside_as=new_uid)
        moved += 1
    return moved
