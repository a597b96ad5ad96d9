"""The call record on SQLite and PostgreSQL: one row per call, idempotent, restart-safe."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import event, insert, select, update
from sqlalchemy.ext.asyncio import create_async_engine
from structlog.testing import capture_logs

from cti.ami import events as ev
from cti.ami.capturelog import read_capture
from cti.ami.events import normalize
from cti.ami.protocol import AmiParser
from cti.calls.live import LiveState
from cti.calls.recorder import CallRecorder
from cti.db.engine import create_engine, sessionmaker
from cti.db.schema import init_schema
from cti.db.tables import agents, calls, customers

NOW = datetime(2026, 11, 22, tzinfo=timezone.utc)


async def _seed(engine) -> tuple[int, int]:
    async with sessionmaker(engine)() as s, s.begin():
        cid = (await s.execute(insert(customers).values(family_name="Wang", given_name="Wei", created_at=NOW,
                                                        updated_at=NOW).returning(customers.c.id))).scalar_one()
        aid = (await s.execute(insert(agents).values(username="lina", display_name="Li Na", interface="Local/1001@agents/n",
                                                     created_at=NOW).returning(agents.c.id))).scalar_one()
    return cid, aid


def _replay(captures: Path, name: str, state: LiveState, recorder: CallRecorder, *,
            decisions: dict[str, dict[str, Any]] | None = None, stop=lambda e: False) -> float:
    cap = read_capture(captures / f"{name}.log")
    parser = AmiParser()
    now = cap.start
    for chunk in cap.received():
        now = cap.start + chunk.t
        for msg in parser.feed(chunk.data):
            e = normalize(msg, state.server)
            if e is None:
                continue
            if isinstance(e, ev.QueueCallerJoin) and decisions and e.uniqueid in decisions:
                state.note_decision({"uniqueid": e.uniqueid, "at": now, **decisions[e.uniqueid]})
            state.apply(e, now)
            for call in state.calls.take_dirty():
                recorder.submit(call.record(now))
            if stop(e):
                return now
    return now


async def _rows(engine) -> list[dict[str, Any]]:
    async with sessionmaker(engine)() as s:
        return [dict(r) for r in (await s.execute(select(calls).order_by(calls.c.uniqueid))).mappings().all()]


async def test_answered_call_becomes_one_complete_row(engine, captures: Path) -> None:
    cid, aid = await _seed(engine)
    rec = CallRecorder(sessionmaker(engine))
    state = LiveState("pbx1")
    decision = {"caller_number": "13800138000", "caller_e164": "+8613800138000", "customer_id": cid,
                "queue": "mobile", "priority": 5, "route": "product", "dialed": "8005551234", "ivr_choice": None}
    _replay(captures, "ami-call-answered", state, rec, decisions={"1795372412.1": decision})
    assert await rec.flush() == 1
    [row] = await _rows(engine)
    expect = {"server": "pbx1", "uniqueid": "1795372412.1", "linkedid": "1795372412.0", "caller_number": "13800138000",
              "caller_e164": "+8613800138000", "customer_id": cid, "dialed": "8005551234", "route": "product",
              "queue": "mobile", "priority": 5, "ivr_choice": None, "wait_s": 2.0, "talk_s": 5.0, "outcome": "answered",
              "agent_id": aid, "agent_interface": "Local/1001@agents/n", "disposition": None, "notes": None}
    assert {k: row[k] for k in expect} == expect
    assert all(row[k] is not None for k in ("started_at", "queued_at", "answered_at", "ended_at"))


async def test_replays_never_duplicate_and_never_reopen_a_closed_row(engine, captures: Path) -> None:
    await _seed(engine)
    rec = CallRecorder(sessionmaker(engine))
    _replay(captures, "ami-busy", LiveState("pbx1"), rec)
    assert await rec.flush() == 6
    first = await _rows(engine)
    async with sessionmaker(engine)() as s, s.begin():  # the agent's wrap-up notes, written elsewhere
        await s.execute(update(calls).where(calls.c.uniqueid == "1795432659.21").values(notes="wants a callback"))

    # the same stream again (failover replay), open states included: still six rows, unchanged
    rec2 = CallRecorder(sessionmaker(engine))
    state2 = LiveState("pbx1")
    mid = _replay(captures, "ami-busy", state2, rec2, stop=lambda e: isinstance(e, ev.AgentConnect))
    for call in state2.calls.active():
        rec2.submit(call.record(mid))  # open rows for calls that are closed in the database
    await rec2.flush()
    _replay(captures, "ami-busy", LiveState("pbx1"), rec2)
    await rec2.flush()
    again = await _rows(engine)
    assert len(again) == 6
    strip = lambda rows: [{k: v for k, v in r.items() if k != "notes"} for r in rows]  # noqa: E731
    assert strip(again) == strip(first)
    assert [r["notes"] for r in again if r["uniqueid"] == "1795432659.21"] == ["wants a callback"]
    assert {r["outcome"] for r in again} == {"answered"}


async def test_restart_reconciliation_keeps_live_calls_and_closes_vanished_ones(engine, captures: Path) -> None:
    await _seed(engine)
    # daemon 1 sees the busy stream up to the first answer, then dies; open rows are on disk
    rec1 = CallRecorder(sessionmaker(engine))
    state1 = LiveState("pbx1")
    died_at = _replay(captures, "ami-busy", state1, rec1, stop=lambda e: isinstance(e, ev.AgentConnect))
    await rec1.flush()
    open_calls = {c.uniqueid: c.state for c in state1.calls.active()}
    assert open_calls == {"1795432659.21": "talking", "1795432659.23": "ringing", "1795432659.27": "ringing",
                          "1795432660.31": "ringing", "1795432660.35": "ringing"}

    # daemon 2 restores them; at resync one talking call is still up, the others are gone
    rec2 = CallRecorder(sessionmaker(engine))
    restored = await rec2.load_open("pbx1")
    assert {c.uniqueid for c in restored} == set(open_calls)
    talking = "1795432659.21"
    state2 = LiveState("pbx1")
    state2.calls.restore(restored)
    resync_at = died_at + 3
    live = [ev.CoreShowChannel("pbx1", "Local/x;2", talking, "", "", "", "from-pstn", "8005551234", "Queue", "mobile", 9,
                               "bridge-1")]
    changes = state2.resync(live, resync_at)
    ended = {p["uniqueid"]: p for t, p in changes if t == "call.ended"}
    assert set(ended) == set(open_calls) - {talking}
    assert {p["outcome"] for p in ended.values()} == {"unknown"}  # they had not been answered
    assert [c.uniqueid for c in state2.calls.active()] == [talking]
    for call in state2.calls.take_dirty():
        rec2.submit(call.record(resync_at))
    await rec2.flush()
    # the surviving call later hangs up: answered, with its agent and the talk time since the answer
    kept = state2.calls.get(talking)
    state2.apply(ev.Hangup("pbx1", kept.channel, talking, kept.linkedid, 16, "Normal Clearing"), resync_at + 4)
    for call in state2.calls.take_dirty():
        rec2.submit(call.record(resync_at + 4))
    await rec2.flush()
    rows = {r["uniqueid"]: r for r in await _rows(engine)}
    assert set(rows) == set(open_calls)
    assert all(r["ended_at"] is not None for r in rows.values())
    r = rows[talking]
    assert r["outcome"] == "answered" and r["agent_interface"] and r["wait_s"] == 2.0
    assert abs(r["talk_s"] - ((resync_at + 4) - kept.answered_at)) < 0.01


async def test_a_row_the_database_rejects_is_dropped_alone(engine, captures: Path) -> None:
    rec = CallRecorder(sessionmaker(engine))
    state = LiveState("pbx1")
    # customer 999999 does not exist: the foreign key rejects that row (PostgreSQL and SQLite with FKs on)
    _replay(captures, "ami-busy", state, rec, decisions={"1795432659.21": {"customer_id": 999999}})
    written = await rec.flush()
    rows = await _rows(engine)
    assert written == len(rows) == 5 and rec.dropped == 1
    assert "1795432659.21" not in {r["uniqueid"] for r in rows}


async def test_a_database_outage_keeps_the_rows_for_the_next_flush(engine, captures: Path) -> None:
    from cti.db.engine import create_engine

    dead = create_engine("postgresql+asyncpg://postgres@127.0.0.1:9/nowhere")  # nothing listens on port 9
    rec = CallRecorder(sessionmaker(dead))
    _replay(captures, "ami-busy", LiveState("pbx1"), rec)
    assert rec.pending == 6
    try:
        await rec.flush()
    except Exception:
        pass
    else:  # pragma: no cover
        raise AssertionError("flush to a dead database must fail")
    finally:
        await dead.dispose()
    assert rec.pending == 6  # nothing lost
    rec.sessionmaker = sessionmaker(engine)  # the database is back
    assert await rec.flush() == 6 and rec.pending == 0
    assert len(await _rows(engine)) == 6


def _rec(uniqueid: str, *, ended: bool, outcome: str | None = None) -> dict[str, Any]:
    """A record as the live state gives it (no customer, no agent)."""
    return {"server": "pbx1", "uniqueid": uniqueid, "linkedid": uniqueid, "caller_number": "13800138000",
            "caller_e164": None, "customer_id": None, "dialed": None, "route": None, "queue": "mobile",
            "priority": None, "ivr_choice": None, "started_at": NOW, "queued_at": NOW, "answered_at": None,
            "ended_at": NOW if ended else None, "wait_s": None, "talk_s": None,
            "outcome": (outcome or "abandoned") if ended else None, "agent_interface": None}


@contextmanager
def upserts(engine, hook=None) -> Iterator[list[int]]:
    """The size of every upsert statement on ``engine``; ``hook(n)`` runs before the n-th (1-based)."""
    sizes: list[int] = []

    def on_execute(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO CALLS"):
            sizes.append(len(params) if executemany else 1)
            if hook is not None:
                hook(len(sizes))

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        yield sizes
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", on_execute)


async def test_a_large_flush_is_written_in_chunks(engine) -> None:
    rec = CallRecorder(sessionmaker(engine), chunk_rows=50)
    for i in range(130):
        rec.submit(_rec(f"c.{i:03}", ended=i % 2 == 0))
    with upserts(engine) as sizes:
        assert await rec.flush() == 130
    assert sizes == [50, 50, 30]
    assert rec.pending == 0 and rec.written == 130
    rows = await _rows(engine)
    assert [r["uniqueid"] for r in rows] == [f"c.{i:03}" for i in range(130)]


async def test_a_failed_chunk_keeps_it_and_the_rest_without_reordering(engine) -> None:
    """Chunk 2 of 3 fails: chunk 1 is written; chunks 2-3 wait for the next flush. Records that came in
    meanwhile win over the ones put back, except a stale open record of a closed call in flight."""
    rec = CallRecorder(sessionmaker(engine), chunk_rows=2)
    for i in range(6):
        rec.submit(_rec(f"k.{i}", ended=True))

    def fail_second(n: int) -> None:
        if n == 2:
            rec.submit(_rec("k.2", ended=False))  # a stale replay of k.2 (closed, in the failing chunk)
            rec.submit(_rec("k.5", ended=True, outcome="answered"))  # a newer record of k.5 (not written yet)
            raise RuntimeError("database gone")

    with upserts(engine, fail_second):
        try:
            await rec.flush()
        except RuntimeError:
            pass
        else:  # pragma: no cover
            raise AssertionError("the flush must fail")
    assert rec.written == 2 and rec.pending == 4
    assert [r["uniqueid"] for r in await _rows(engine)] == ["k.0", "k.1"]
    assert await rec.flush() == 4 and rec.pending == 0
    rows = {r["uniqueid"]: r for r in await _rows(engine)}
    assert sorted(rows) == [f"k.{i}" for i in range(6)]
    assert rows["k.2"]["ended_at"] is not None and rows["k.2"]["outcome"] == "abandoned"
    assert rows["k.5"]["outcome"] == "answered"


async def _locked_sqlite(tmp_path: Path) -> tuple[Any, sqlite3.Connection]:
    """An engine on a schema'd SQLite file with a 50 ms busy timeout, and a connection holding its write lock."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'locked.db'}"
    schema_engine = create_engine(url)
    await init_schema(schema_engine)
    await schema_engine.dispose()
    eng = create_async_engine(url, connect_args={"timeout": 0.05})
    blocker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    blocker.execute("PRAGMA journal_mode=WAL")
    blocker.execute("BEGIN IMMEDIATE")  # another writer (the greeting sweeper at stop) holds the lock
    return eng, blocker


async def _logged(logs: list[dict[str, Any]], event_name: str) -> dict[str, Any]:
    for _ in range(1000):
        for entry in logs:
            if entry["event"] == event_name:
                return entry
        await asyncio.sleep(0.01)
    raise AssertionError(f"{event_name} never logged: {[e['event'] for e in logs]}")


async def test_the_final_flush_waits_out_a_locked_sqlite_database(tmp_path: Path) -> None:
    eng, blocker = await _locked_sqlite(tmp_path)
    try:
        rec = CallRecorder(sessionmaker(eng), final_retry_s=60)
        rec.submit(_rec("s.1", ended=True))
        rec.submit(_rec("s.2", ended=False))
        with capture_logs() as logs:
            closing = asyncio.create_task(rec.close())
            await _logged(logs, "recorder.final_flush_busy")
            assert not closing.done()
            blocker.execute("ROLLBACK")  # the other writer is done
            await asyncio.wait_for(closing, 30)
        assert rec.pending == 0 and rec.written == 2
        assert [e["event"] for e in logs if e["event"].startswith("recorder.final")][-1] == "recorder.final_flush_done"
        assert [r["uniqueid"] for r in await _rows(eng)] == ["s.1", "s.2"]
    finally:
        blocker.close()
        await eng.dispose()


async def test_a_final_flush_that_cannot_write_names_every_lost_call(tmp_path: Path) -> None:
    eng, blocker = await _locked_sqlite(tmp_path)
    try:
        rec = CallRecorder(sessionmaker(eng), final_retry_s=0.3)
        rec.submit(_rec("l.1", ended=False))
        rec.submit(_rec("l.2", ended=True))
        with capture_logs() as logs:
            await asyncio.wait_for(rec.close(), 60)
        failed = [e for e in logs if e["event"] == "recorder.final_flush_failed"]
        assert len(failed) == 1 and "database is locked" in failed[0]["error"]
        assert failed[0]["lost"] == 2 and failed[0]["lost_ended"] == 1 and failed[0]["lost_open"] == 1
        assert failed[0]["calls"] == ["pbx1/l.2", "pbx1/l.1 (open)"]
        assert rec.pending == 2  # still held: a later flush (if any) writes them
        blocker.execute("ROLLBACK")
        assert await rec.flush() == 2
    finally:
        blocker.close()
        await eng.dispose()


async def test_stopping_during_a_flush_lets_it_finish_first(engine) -> None:
    """The daemon stops by cancelling the recorder's task, maybe mid-flush: the flush goes to its end
    (an abandoned aiosqlite transaction would keep SQLite locked) and the final flush then works."""
    rec = CallRecorder(sessionmaker(engine), chunk_rows=10, flush_interval=60)
    for i in range(30):
        rec.submit(_rec(f"s.{i:02}", ended=True))  # ended records wake the flush at once
    in_flush = asyncio.Event()
    real = rec._write

    async def slow_write(session, rows):  # noqa: ANN001
        in_flush.set()
        await asyncio.sleep(0.05)
        return await real(session, rows)

    rec._write = slow_write  # type: ignore[method-assign]
    task = asyncio.create_task(rec.run())
    await asyncio.wait_for(in_flush.wait(), 10)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert rec.written == 30 and rec.pending == 0  # the interrupted flush went to its end
    rec.submit(_rec("s.last", ended=True))
    await asyncio.wait_for(rec.close(), 10)
    assert len(await _rows(engine)) == 31


def _at(rec: dict[str, Any], start: datetime, end: datetime | None) -> dict[str, Any]:
    return {**rec, "started_at": start, "queued_at": start, "ended_at": end}


async def test_a_reused_uniqueid_long_after_the_stored_call_ended_is_a_new_call(engine) -> None:
    """A PBX whose clock jumped back (or a restarted simulator) reuses a uniqueid: both calls are kept,
    the new one under the uniqueid (what the console and the wrap-up use), with a warning."""
    from datetime import timedelta
    rec = CallRecorder(sessionmaker(engine))
    first = NOW - timedelta(hours=2)
    rec.submit(_at(_rec("1795372412.0", ended=True, outcome="answered"), first, first + timedelta(minutes=3)))
    await rec.flush()
    async with sessionmaker(engine)() as s, s.begin():
        await s.execute(update(calls).where(calls.c.uniqueid == "1795372412.0").values(notes="first run's notes"))
    rec2 = CallRecorder(sessionmaker(engine))
    with capture_logs() as logs:
        rec2.submit(_at(_rec("1795372412.0", ended=False), NOW, None))
        await rec2.flush()
        rec2.submit(_at(_rec("1795372412.0", ended=True), NOW, NOW + timedelta(seconds=40)))
        await rec2.flush()
    rows = await _rows(engine)
    assert len(rows) == 2
    current = [r for r in rows if r["uniqueid"] == "1795372412.0"]
    [old] = [r for r in rows if r["uniqueid"] != "1795372412.0"]
    assert len(current) == 1 and current[0]["outcome"] == "abandoned" and current[0]["notes"] is None
    assert old["notes"] == "first run's notes" and old["outcome"] == "answered"
    assert old["uniqueid"].startswith("1795372412.0")
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["recorder.uniqueid_reused"]


async def test_the_same_call_from_another_node_still_updates_its_row(engine) -> None:
    """Failover: the same call (same start, within seconds) upserts its row, open or ended."""
    from datetime import timedelta
    rec = CallRecorder(sessionmaker(engine))
    rec.submit(_at(_rec("1795372412.5", ended=True, outcome="answered"), NOW, NOW + timedelta(minutes=1)))
    await rec.flush()
    other = CallRecorder(sessionmaker(engine))
    with capture_logs() as logs:
        other.submit(_at(_rec("1795372412.5", ended=True, outcome="answered"), NOW + timedelta(seconds=2),
                         NOW + timedelta(minutes=1)))
        await other.flush()
    rows = await _rows(engine)
    assert [r["uniqueid"] for r in rows] == ["1795372412.5"]
    assert not [e for e in logs if e["event"] == "recorder.uniqueid_reused"]
