"""The call record: one ``calls`` row per call, written off the event path.

* :meth:`CallRecorder.submit` is synchronous and O(1): the latest record of each
  (server, uniqueid) waits in a dict (a closed record is never replaced by an open one).
* :meth:`CallRecorder.run` (a background task owned by the composition root) flushes
  every ``flush_interval`` s: an idempotent upsert keyed by (server, uniqueid), so replays
  and failover never duplicate a call, and a closed row is never reopened by a stale replay
  (nor a closed record waiting or being written replaced by an open one).
  ``disposition``/``notes`` (the agent's wrap-up) are never touched. An ended row is never
  overwritten by a *different* call that reuses its uniqueid (a PBX clock that jumped back, a
  restarted simulator): cti/calls/reuse.py sets the old row aside first, with a warning.
* A flush writes ``chunk_rows`` rows per statement and transaction, with a turn of the event
  loop between chunks: a flush of thousands of rows never holds up a screen-pop for its whole
  duration. A chunk that fails goes back to the pending rows with everything after it (unless
  a newer record of the call came meanwhile): nothing is lost, each call's records stay in order.
* Open calls are written too (``ended_at`` NULL): after a daemon restart
  :meth:`load_open` gives them back to the live state, which reconciles them at resync.
* A database outage keeps the rows and retries; a row the database rejects (say, a
  foreign key) is retried alone and then dropped with an error log, not retried forever.
* :meth:`close` flushes everything; a busy SQLite database ("database is locked": another
  writer, say the greeting sweeper at stop, outlasted the busy timeout) is retried with a short
  backoff for ``final_retry_s``; what still cannot be written is logged call by call.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import structlog
from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cti.calls.model import Call, Leg
from cti.calls.reuse import set_aside_reused
from cti.db.tables import agents, calls
from cti.db.unbroken import unbroken

log = structlog.get_logger(__name__)

#: Columns the recorder owns (everything but id, agent wrap-up fields).
RECORD_COLUMNS = (
    "linkedid", "caller_number", "caller_e164", "customer_id", "dialed", "route", "queue", "priority",
    "ivr_choice", "started_at", "queued_at", "answered_at", "ended_at", "wait_s", "talk_s", "outcome",
    "agent_id", "agent_interface",
)


#: Rows per upsert statement (and transaction): ~1 ms of event-loop time at most between two turns.
CHUNK_ROWS = 40

#: How the final flush's failure is logged: every lost call, up to this many (then a count).
LOST_LOGGED = 500

Key = tuple[str, str]  # (server, uniqueid)


class CallRecorder:
    def __init__(self, sessionmaker: async_sessionmaker, *, flush_interval: float = 0.5,
                 chunk_rows: int = CHUNK_ROWS, final_retry_s: float = 10.0) -> None:
        self.sessionmaker = sessionmaker
        self.flush_interval = flush_interval
        self.chunk_rows = max(1, chunk_rows)
        self.final_retry_s = final_retry_s
        self._pending: dict[Key, dict[str, Any]] = {}
        self._inflight: dict[Key, dict[str, Any]] = {}  # taken by the flush in progress, not written yet
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._agent_ids: dict[str, int | None] = {}
        self.written = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Records not written yet (waiting, or in the flush in progress)."""
        return len(self._pending.keys() | self._inflight.keys())

    def submit(self, record: dict[str, Any]) -> None:
        key = (record["server"], record["uniqueid"])
        old = self._pending.get(key)
        if old is None:
            old = self._inflight.get(key)
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
                # never cut a flush off between its statements (stop cancels this task): an abandoned
                # aiosqlite transaction would keep SQLite locked for the final flush in close()
                await unbroken(self.flush(), grace_s=self.final_retry_s)
            except Exception as exc:  # database down: keep the rows, try again later
                log.error("recorder.flush_failed", error=str(exc), pending=self.pending)
                await asyncio.sleep(min(5.0, self.flush_interval * 4))

    async def flush(self) -> int:
        """Write every pending record now (after any flush in progress); returns the rows written."""
        async with self._lock:
            return await self._flush()

    async def _flush(self) -> int:
        if not self._pending:
            return 0
        self._inflight, self._pending = self._pending, {}
        items = list(self._inflight.items())
        written = 0
        try:
            async with self.sessionmaker() as session:  # one connection; no transaction open between chunks
                for start in range(0, len(items), self.chunk_rows):
                    if start:
                        await asyncio.sleep(0)  # the loop serves sockets (screen-pops) between chunks
                    chunk = items[start:start + self.chunk_rows]
                    written += await self._write(session, [rec for _, rec in chunk])
                    for key, _ in chunk:
                        del self._inflight[key]
        finally:
            # not written (failure, cancellation): back to the pending rows, unless a newer record of the
            # call arrived meanwhile (submit never lets an open record replace a closed one in flight)
            for key, rec in self._inflight.items():
                self._pending.setdefault(key, rec)
            self._inflight = {}
            self.written += written
        return written

    async def _write(self, session: AsyncSession, rows: list[dict[str, Any]]) -> int:
        """One chunk in one transaction; a chunk the database rejects is written row by row."""
        try:
            async with session.begin():
                await self._fill_agent_ids(session, rows)
                await set_aside_reused(session, ((r["server"], r["uniqueid"], r.get("started_at")) for r in rows))
                await session.execute(self._upsert(session), [self._row(r) for r in rows])
        except (IntegrityError, DataError):
            return await self._write_one_by_one(session, rows)
        return len(rows)

    async def _write_one_by_one(self, session: AsyncSession, rows: list[dict[str, Any]]) -> int:
        n = 0
        for r in rows:
            try:
                async with session.begin():
                    await self._fill_agent_ids(session, [r])
                    await set_aside_reused(session, [(r["server"], r["uniqueid"], r.get("started_at"))])
                    await session.execute(self._upsert(session), [self._row(r)])
                n += 1
            except (IntegrityError, DataError) as exc:
                self.dropped += 1
                log.error("recorder.row_rejected", uniqueid=r["uniqueid"], server=r["server"], error=str(exc.orig))
        return n

    async def close(self) -> None:
        """The final flush: everything pending is written, retrying a busy SQLite database for a while.

        What cannot be written is logged (every call, open or ended) and kept in :attr:`pending`."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self.final_retry_s
        delay, tries = 0.05, 0
        while True:
            tries += 1
            try:
                await self.flush()
                if tries > 1:
                    log.info("recorder.final_flush_done", tries=tries)
                return
            except OperationalError as exc:
                if not _busy(exc) or loop.time() + delay > give_up_at:
                    self._lost(exc, tries)
                    return
                log.warning("recorder.final_flush_busy", error=str(exc.orig), pending=self.pending, tries=tries,
                            retry_in_s=delay)
            except Exception as exc:
                self._lost(exc, tries)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _lost(self, exc: Exception, tries: int) -> None:
        lost = list(self._pending.values())
        ended = [r for r in lost if r.get("ended_at") is not None]
        shown = sorted(lost, key=lambda r: r.get("ended_at") is None)[:LOST_LOGGED]  # ended calls first
        log.error("recorder.final_flush_failed", error=str(getattr(exc, "orig", exc)), tries=tries,
                  lost=len(lost), lost_ended=len(ended), lost_open=len(lost) - len(ended),
                  calls=[f"{r['server']}/{r['uniqueid']}{'' if r.get('ended_at') is not None else ' (open)'}"
                         for r in shown],
                  not_listed=len(lost) - len(shown))

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


def _busy(exc: OperationalError) -> bool:
    """SQLite's SQLITE_BUSY ("database is locked"): another connection holds the write lock."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlite_errorcode", None) is not None:
        return orig.sqlite_errorcode & 0xFF == 5  # SQLITE_BUSY and its extended codes
    text = str(orig if orig is not None else exc).lower()
    return "database is locked" in text or "database is busy" in text


def _ts(v: datetime | None) -> float | None:
    if v is None:
        return None
    if v.tzinfo is None:
        v = v.replace(tzinfo=timezone.utc)
    return v.timestamp()
