"""The greeting service: background synthesis recorded in customers.greeting (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import shutil
import wave
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, update
from structlog.testing import capture_logs

from cti.config import GreetingConfig
from cti.db.engine import sessionmaker
from cti.db.tables import customers
from cti.greeting.naming import fixed_prompts
from cti.greeting.service import GreetingService

pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")), reason="espeak-ng and sox are not installed"
)


@pytest.fixture
def cfg(tmp_path: Path) -> GreetingConfig:
    return GreetingConfig(sounds_dir=str(tmp_path / "sounds"))


@pytest.fixture
async def service(cfg, engine):
    svc = GreetingService(cfg, sessionmaker(engine), sweep_interval=None)
    yield svc
    await svc.stop()


async def add_customer(engine, family: str, given: str = "", title: str = "", language: str = "zh") -> int:
    now = datetime.now(timezone.utc)
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(customers).values(
                family_name=family, given_name=given, title=title, language=language, created_at=now, updated_at=now
            )
        )
        return int(result.inserted_primary_key[0])


async def greeting_of(engine, customer_id: int) -> str | None:
    async with engine.connect() as conn:
        return (await conn.execute(select(customers.c.greeting).where(customers.c.id == customer_id))).scalar_one()


def wav_params(path: Path) -> tuple[int, int, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getnframes() > 0
        return w.getframerate(), w.getnchannels(), w.getsampwidth()


async def test_start_builds_generic_ivr_and_after_hours_sounds(service, cfg):
    await service.start()
    for prompt in fixed_prompts(cfg.generic_zh, cfg.generic_en):
        assert wav_params(Path(cfg.sounds_dir) / f"{prompt.name}.wav") == (8000, 1, 2)
    assert service.generic_sound("zh") == "cti/greet-generic-zh"
    assert service.generic_sound("en") == "cti/greet-generic-en"
    assert service.generic_sound("fr") == "cti/greet-generic-zh"


async def test_requested_greeting_is_synthesized_and_recorded(service, engine, cfg):
    wang = await add_customer(engine, "王", "伟", "先生", "zh")
    smith = await add_customer(engine, "Smith", "John", "Mr", "en")
    await service.start()
    assert service.request(wang, "王", "伟", "先生", "zh")
    assert service.request(smith, "Smith", "John", "Mr", "en")
    await service.drain()
    for cid, text in ((wang, "王先生，您好"), (smith, "Hello Mr. Smith")):
        name = await greeting_of(engine, cid)
        assert name == service.greeting_for(cid, *(("王", "伟", "先生", "zh") if cid == wang else ("Smith", "John", "Mr", "en"))).name
        assert name.startswith(f"greet-{cid}-")
        assert wav_params(Path(cfg.sounds_dir) / f"{name}.wav") == (8000, 1, 2)
        assert service.playback_name(name) == f"cti/{name}"


async def test_rename_while_queued_does_not_record_the_old_greeting(service, engine):
    cid = await add_customer(engine, "王", "伟", "先生")
    service.request(cid, "王", "伟", "先生", "zh")  # queued before the rename, processed after it
    async with engine.begin() as conn:
        await conn.execute(update(customers).where(customers.c.id == cid).values(family_name="李", greeting=None))
    await service.start()
    await service.drain()
    assert await greeting_of(engine, cid) is None
    service.request(cid, "李", "伟", "先生", "zh")
    await service.drain()
    assert await greeting_of(engine, cid) == service.greeting_for(cid, "李", "伟", "先生", "zh").name


async def test_request_for_a_deleted_customer_is_harmless(service, engine):
    cid = await add_customer(engine, "Smith", "", "Mr", "en")
    async with engine.begin() as conn:
        await conn.execute(delete(customers).where(customers.c.id == cid))
    await service.start()
    service.request(cid, "Smith", "", "Mr", "en")
    await service.drain()
    assert await service.build(cid, "Smith", "", "Mr", "en") is False


async def test_duplicate_requests_are_queued_once(service, engine):
    cid = await add_customer(engine, "王", "", "先生")
    for _ in range(5):
        assert service.request(cid, "王", "", "先生", "zh")
    assert service._queue.qsize() == 1


async def test_full_queue_drops_and_the_sweeper_catches_up(cfg, engine):
    svc = GreetingService(cfg, sessionmaker(engine), queue_size=2, sweep_interval=None)
    ids = [await add_customer(engine, family, "", "先生") for family in ("王", "李", "张", "刘")]
    accepted = [svc.request(cid, fam, "", "先生", "zh") for cid, fam in zip(ids, ("王", "李", "张", "刘"))]
    assert accepted == [True, True, False, False] and svc.dropped == 2
    assert await svc.sweep_backlog() == 4
    assert all([await greeting_of(engine, cid) for cid in ids])
    await svc.stop()


async def test_sweep_shares_one_synthesis_per_distinct_greeting(service, engine, cfg):
    ids = [await add_customer(engine, "王", given, "先生") for given in ("伟", "芳", "秀英", "强", "磊")]
    ids += [await add_customer(engine, "Smith", given, "Mr", "en") for given in ("John", "Paul")]
    assert await service.sweep_backlog() == 7
    assert service.store.syntheses == 2
    names = [await greeting_of(engine, cid) for cid in ids]
    assert len(set(names)) == 7
    wang_cache = service.store.cache_path("王先生，您好", cfg.voice_zh)
    for name in names[:5]:
        assert os.path.samefile(Path(cfg.sounds_dir) / f"{name}.wav", wang_cache)
    assert await service.sweep_backlog() == 0  # nothing left to do


async def test_sweep_respects_its_limit(service, engine):
    ids = [await add_customer(engine, fam, "", "先生") for fam in ("王", "李", "张")]
    await service.sweep_backlog(limit=2)
    assert [bool(await greeting_of(engine, cid)) for cid in ids] == [True, True, False]


async def test_customers_without_a_usable_name_get_the_generic_greeting(service, engine):
    zh = await add_customer(engine, "", "", "先生", "zh")
    en = await add_customer(engine, "!!!", "123", "", "en")
    await service.sweep_backlog()
    assert await greeting_of(engine, zh) == "greet-generic-zh"
    assert await greeting_of(engine, en) == "greet-generic-en"


HOSTILE = ["../../etc/passwd", "-rf", "'\"; DROP TABLE customers; --", "王\r\nagi_network: yes", "a\x00b", "Z" * 10_000]


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_names_are_recorded_as_safe_sound_names(service, engine, cfg, hostile):
    stored = hostile.replace("\x00", "")  # PostgreSQL text cannot hold NUL; the service can still be asked
    cid = await add_customer(engine, stored, stored, stored, "en")
    await service.start()
    service.request(cid, hostile, hostile, hostile, "en")
    service.request(cid, stored, stored, stored, "en")
    await service.drain()
    name = await greeting_of(engine, cid)
    assert name is not None and name.startswith(f"greet-{cid}-")
    files = [p.name for p in Path(cfg.sounds_dir).rglob("*")]
    assert all(("passwd" not in f and "rf" not in f and "DROP" not in f and "ZZZ" not in f) for f in files)


async def test_missing_tool_leaves_the_generic_greeting_and_logs(cfg, engine):
    broken = replace(cfg, espeak="/nonexistent/espeak-ng")
    svc = GreetingService(broken, sessionmaker(engine), sweep_interval=None)
    ids = [await add_customer(engine, fam, "", "先生") for fam in ("王", "李", "张", "刘", "陈", "杨", "赵")]
    with capture_logs() as logs:
        await svc.start()  # does not raise: calls still get routed, with no greeting sound
        assert await svc.sweep_backlog() == 0
        svc.request(ids[0], "王", "", "先生", "zh")
        await svc.drain()
        await svc.stop()
    events = [e["event"] for e in logs]
    assert "greeting_generic_failed" in events and "greeting_sweep_aborted" in events
    assert "greeting_synthesis_failed" in events
    assert all([await greeting_of(engine, cid) is None for cid in ids])


async def test_sweeper_runs_when_scheduled(cfg, engine):
    svc = GreetingService(cfg, sessionmaker(engine), sweep_interval=3600)
    await svc.start()
    try:
        cid = await add_customer(engine, "Smith", "", "Dr", "en")
        svc.schedule_sweep()
        for _ in range(500):
            if await greeting_of(engine, cid):
                break
            await asyncio.sleep(0.02)
        assert await greeting_of(engine, cid) == svc.greeting_for(cid, "Smith", "", "Dr", "en").name
    finally:
        await svc.stop()


def _processes_running(cmdline: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/cmdline").read_bytes().startswith(cmdline):
                    found.append(int(entry))
            except OSError:
                continue
    return found


def _live_children() -> list[int]:
    me, kids = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me and fields[0] != "Z":
                kids.append(int(entry))
    return kids


async def test_stop_with_work_in_progress_kills_tools_and_leaves_no_partial_files(cfg, engine, tmp_path):
    await GreetingService(cfg, sessionmaker(engine), sweep_interval=None).ensure_generic()
    slow = tmp_path / "slow-espeak"
    pause = f"37.{os.getpid()}{len(os.listdir(tmp_path.parent))}"  # unique to this run
    slow.write_text(f'#!/bin/sh\nsleep {pause}\nexec {shutil.which("espeak-ng")} "$@"\n')  # a wrapper: 2 processes
    slow.chmod(0o755)
    svc = GreetingService(replace(cfg, espeak=str(slow)), sessionmaker(engine), sweep_interval=5)
    families = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"]
    ids = [await add_customer(engine, fam, "", "先生") for fam in families]
    before = set(_live_children())  # other tests' helpers may still be around
    await svc.start()  # fixed sounds are cached: no slow synthesis here
    for cid, fam in zip(ids, families):
        assert svc.request(cid, fam, "", "先生", "zh")
    while len(set(_live_children()) - before) < 2:  # both synthesis slots busy with the slow tool
        await asyncio.sleep(0.01)
    async with asyncio.timeout(15):  # a hung tool must not hold up shutdown (it sleeps 37 s)
        tasks = list(svc._tasks)
        await svc.stop()
    assert all(t.done() for t in tasks) and svc._tasks == []
    assert set(_live_children()) - before == set()
    assert _processes_running(b"sleep\x00" + pause.encode()) == []  # the wrapper's own child was killed too
    leftovers = [p.name for p in Path(cfg.sounds_dir).rglob(".tmp-*")]
    assert leftovers == []
    assert all([await greeting_of(engine, cid) is None for cid in ids])


async def test_prune_removes_files_of_renamed_and_deleted_customers_only(service, engine, cfg):
    renamed = await add_customer(engine, "王", "", "先生")
    gone = await add_customer(engine, "李", "", "先生")
    kept = await add_customer(engine, "张", "", "先生")
    await service.sweep_backlog()
    old = {cid: await greeting_of(engine, cid) for cid in (renamed, gone, kept)}
    async with engine.begin() as conn:
        await conn.execute(update(customers).where(customers.c.id == renamed).values(family_name="赵", greeting=None))
        await conn.execute(delete(customers).where(customers.c.id == gone))
    # synthesized for the new name but not recorded yet: must survive
    pending = service.greeting_for(renamed, "赵", "", "先生", "zh")
    await service.store.publish(pending.name, pending.text, pending.voice)
    await service.ensure_generic()
    assert await service.prune_stale() == 2
    sounds = Path(cfg.sounds_dir)
    assert not (sounds / f"{old[renamed]}.wav").exists() and not (sounds / f"{old[gone]}.wav").exists()
    assert (sounds / f"{old[kept]}.wav").exists() and (sounds / f"{pending.name}.wav").exists()
    assert (sounds / "greet-generic-zh.wav").exists()  # fixed sounds are never touched
    assert service.store.cache_path("王先生，您好", cfg.voice_zh).exists()


async def test_a_write_cut_off_at_stop_finishes_and_releases_the_database(cfg, engine):
    """Cancelling the greeting writer mid-transaction (daemon stop) must not leave SQLite locked."""
    from cti.greeting import service as svc_mod

    svc = GreetingService(cfg, sessionmaker(engine), sweep_interval=None)
    cid = await add_customer(engine, "Smith", "", "Dr", "en")
    sound = svc.greeting_for(cid, "Smith", "", "Dr", "en").name
    started = asyncio.Event()
    real = svc._record_tx

    async def slow_tx(customer_id, name):  # noqa: ANN001
        started.set()
        await asyncio.sleep(0.2)  # cancelled while "inside" the write
        return await real(customer_id, name)

    svc._record_tx = slow_tx  # type: ignore[method-assign]
    task = asyncio.create_task(svc._record(cid, sound))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await greeting_of(engine, cid) == sound  # the write went to its end
    async with engine.begin() as conn:  # and released the database: another writer gets in at once
        await conn.execute(svc_mod.update(svc_mod.customers).where(svc_mod.customers.c.id == cid).values(email="x@y"))
