"""The call record: one ``calls`` row per call, written off the event path.

* :meth:`CallRecorder.submit` is synchronous and O(1): the latest record of each
  (server, uniqueid) waits in a dict (a closed record is never replaced by an open one).
* :meth:`CallRecorder.run` (a background task owned by the composition root) flushes
  every ``flush_interval`` s in one transaction: an idempotent upsert keyed by
  (server, uniqueid), so replays and failover never duplicate a call, and a closed row is
  never reopened by a stale replay. ``disposition``/``notes`` (the agent's wrap-up) are
  never touched.
* Open calls are written too (``ended_at`` NULL): after a daemon restart
  :meth:`load_open` gives them back to the live state, which reconciles them at resync.
* A database outage keeps the rows and retries; a row the database rejects (say, a
  foreign key) is retried alone and then dropped with an error log, not retried forever.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import structlog
from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from cti.calls.model import Call, Leg
from cti.db.tables import agents, calls

log = structlog.get_logger(__name__)

#: Columns the recorder owns (everything but id, agent wrap-up fields).
RECORD_COLUMNS = (
    "linkedid", "caller_number", "caller_e164", "customer_id", "dialed", "route", "queue", "priority",
    "ivr_choice", "started_at", "queued_at", "answered_at", "ended_at", "wait_s", "talk_s", "outcome",
    "agent_id", "agent_interface",
)


class CallRecorder:
    def __init__(self, sessionmaker: async_sessionmaker, *, flush_interval: float = 0.5) -> None:
        self.sessionmaker = sessionmaker
        self.flush_interval = flush_interval
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._agent_ids: dict[str, int | None] = {}
        self.written = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def submit(self, record: dict[str, Any]) -> None:
        key = (record["server"], record["uniqueid"])
        old = self._pending.get(key)
        if old is not None and old.get("ended_at") is not None and record.get("ended_at") is None:
            return
        self._pending[key] = record
        if record.get("ended_at") is not None:
            self._wake.set()

    async def run(self) -> None:
        """Flush forever (cancel to stop; :meth:`close` does a last flush)."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            await asyncio.sleep(0)  # let a burst of events coalesce
            try:
                await self.flush()
            except Exception as exc:  # database down: keep the rows, try again later
                log.error("recorder.flush_failed", error=str(exc), pending=len(self._pending))
                await asyncio.sleep(min(5.0, self.flush_interval * 4))

    async def flush(self) -> int:
        """Write every pending record now (after any flush in progress); returns the rows written."""
        async with self._lock:
            return await self._flush()

    async def _flush(self) -> int:
        if not self._pending:
            return 0
        batch, self._pending = self._pending, {}
        rows = list(batch.values())
        try:
            async with self.sessionmaker() as session, session.begin():
                await self._fill_agent_ids(session, rows)
                await session.execute(self._upsert(session), [self._row(r) for r in rows])
        except (IntegrityError, DataError):
            return await self._flush_one_by_one(rows)
        except BaseException:
            for key, rec in batch.items():  # put back unless a newer record arrived meanwhile
                if key not in self._pending:
                    self._pending[key] = rec
            raise
        self.written += len(rows)
        return len(rows)

    async def _flush_one_by_one(self, rows: list[dict[str, Any]]) -> int:
        n = 0
        for r in rows:
            try:
                async with self.sessionmaker() as session, session.begin():
                    await self._fill_agent_ids(session, [r])
                    await session.execute(self._upsert(session), [self._row(r)])
                n += 1
            except (IntegrityError, DataError) as exc:
                self.dropped += 1
                log.error("recorder.row_rejected", uniqueid=r["uniqueid"], server=r["server"], error=str(exc.orig))
        self.written += n
        return n

    async def close(self) -> None:
        try:
            await self.flush()
        except Exception as exc:
            log.error("recorder.final_flush_failed", error=str(exc), pending=len(self._pending))

    # -- SQL -----------------------------------------------------------------------
    @staticmethod
    def _upsert(session: Any) -> Any:
        dialect = session.bind.dialect.name
        ins = pg_insert(calls) if dialect == "postgresql" else sqlite_insert(calls)
        return ins.on_conflict_do_update(
            index_elements=[calls.c.server, calls.c.uniqueid],
            set_={c: getattr(ins.excluded, c) for c in RECORD_COLUMNS},
            # a stale (open) replay never reopens a closed row
            where=or_(calls.c.ended_at.is_(None), ins.excluded.ended_at.is_not(None)),
        )

    def _row(self, r: dict[str, Any]) -> dict[str, Any]:
        row = {c: r.get(c) for c in RECORD_COLUMNS}
        row["server"], row["uniqueid"] = r["server"], r["uniqueid"]
        row["agent_id"] = self._agent_ids.get(r["agent_interface"]) if r.get("agent_interface") else None
        return row

    async def _fill_agent_ids(self, session: Any, rows: list[dict[str, Any]]) -> None:
        wanted = {r["agent_interface"] for r in rows if r.get("agent_interface")} - self._agent_ids.keys()
        if not wanted:
            return
        res = await session.execute(select(agents.c.interface, agents.c.id).where(agents.c.interface.in_(wanted)))
        found = dict(res.all())
        for iface in wanted:
            if iface in found:  # unknown interfaces are looked up again next time
                self._agent_ids[iface] = found[iface]

    async def load_open(self, server: str) -> list[Call]:
        """Calls of ``server`` that were open (``ended_at`` NULL) when the daemon stopped."""
        async with self.sessionmaker() as session:
            res = await session.execute(select(calls).where(calls.c.server == server, calls.c.ended_at.is_(None)))
            rows = res.mappings().all()
        out = []
        for r in rows:
            call = Call(server, r["uniqueid"], started_at=_ts(r["started_at"]) or 0.0, linkedid=r["linkedid"] or "",
                        caller_number=r["caller_number"] or "", caller_e164=r["caller_e164"],
                        customer_id=r["customer_id"], dialed=r["dialed"], route=r["route"],
                        priority=r["priority"], ivr_choice=r["ivr_choice"])
            if r["queue"]:
                leg = Leg(queue=r["queue"], queued_at=_ts(r["queued_at"]) or call.started_at,
                          answered_at=_ts(r["answered_at"]), agent_interface=r["agent_interface"])
                if leg.answered_at is not None:
                    leg.result = "answered"
                    leg.hold_time = r["wait_s"]
                call.legs.append(leg)
                call.state = "talking" if leg.answered_at is not None else "queued"
            out.append(call)
        return out


def _ts(v: datetime | None) -> float | None:
    if v is None:
        return None
    if v.tzinfo is None:
        v = v.replace(tzinfo=timezone.utc)
    return v.timestamp()
