"""Bulk greeting builds after an import: driver-level batch reads/writes and the whole pipeline (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from cti.config import GreetingConfig
from cti.db.engine import sessionmaker
from cti.db.tables import customers
from cti.greeting import links
from cti.greeting.bulk import build_all
from cti.greeting.bulkdb import count_backlog, fetch_backlog, record_greetings
from cti.greeting.service import GreetingService

needs_tools = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")), reason="espeak-ng and sox are not installed"
)

NAMES = [
    ("王", "伟", "先生", "zh"), ("王", "芳", "先生", "zh"), ("李", "娜", "女士", "zh"), ("王", "伟", "先生", "zh"),
    ("Smith", "John", "Mr", "en"), ("", "", "先生", "zh"), ("!!!", "123", "", "en"), ("李", "强", "女士", "zh"),
]


async def seed(engine, names=NAMES) -> list[int]:
    now = datetime.now(timezone.utc)
    ids = []
    async with engine.begin() as conn:
        for family, given, title, language in names:
            result = await conn.execute(
                insert(customers).values(
                    family_name=family, given_name=given, title=title, language=language, created_at=now, updated_at=now
                )
            )
            ids.append(int(result.inserted_primary_key[0]))
    return ids


async def greetings_of(engine, ids: list[int]) -> list[str | None]:
    async with engine.connect() as conn:
        rows = dict((await conn.execute(select(customers.c.id, customers.c.greeting).where(customers.c.id.in_(ids)))).all())
    return [rows[i] for i in ids]


# --- driver-level reads and writes --------------------------------------------------------------


async def test_fetch_and_count_read_the_backlog_in_id_order(engine):
    ids = await seed(engine)
    async with engine.begin() as conn:
        await conn.execute(update(customers).where(customers.c.id == ids[1]).values(greeting="greet-generic-zh"))
    assert await count_backlog(engine) == len(ids) - 1
    first = await fetch_backlog(engine, -1, 3)
    assert [r[0] for r in first] == [ids[0], ids[2], ids[3]]
    assert tuple(first[0]) == (ids[0], "王", "伟", "先生", "zh")
    rest = await fetch_backlog(engine, first[-1][0], 100)
    assert [r[0] for r in rest] == ids[4:]
    assert await fetch_backlog(engine, ids[-1], 100) == []


async def test_record_greetings_in_batch_is_a_compare_and_set(engine):
    ids = await seed(engine)
    async with engine.begin() as conn:  # already has one: not overwritten
        await conn.execute(update(customers).where(customers.c.id == ids[2]).values(greeting="greet-old"))
    records = [(f"greet-{cid}-000000000000", cid, *NAMES[n]) for n, cid in enumerate(ids)]
    records[1] = ("greet-renamed", ids[1], "赵", "芳", "先生", "zh")  # renamed since it was read: skipped
    records.append(("greet-gone", 999_999, "王", "", "", "zh"))  # deleted customer: skipped
    assert await record_greetings(engine, records) == len(ids) - 2
    got = await greetings_of(engine, ids)
    assert got[0] == f"greet-{ids[0]}-000000000000"
    assert got[1] is None and got[2] == "greet-old"
    assert got[3:] == [f"greet-{cid}-000000000000" for cid in ids[3:]]
    assert await record_greetings(engine, records) == 0  # run twice: nothing left to set
    assert await record_greetings(engine, []) == 0


async def test_record_greetings_handles_a_big_batch_and_hostile_text(engine):
    hostile = "'\"; DROP TABLE customers; --"
    ids = await seed(engine, [(hostile, "王\r\n", "先生", "zh")] * 3000)
    records = [(f"greet-{cid}-abcdef012345", cid, hostile, "王\r\n", "先生", "zh") for cid in ids]
    assert await record_greetings(engine, records) == 3000
    assert set(await greetings_of(engine, ids)) == {f"greet-{cid}-abcdef012345" for cid in ids}


# --- the whole pipeline (real espeak-ng and sox) -------------------------------------------------


@pytest.fixture
def cfg(tmp_path: Path) -> GreetingConfig:
    return GreetingConfig(sounds_dir=str(tmp_path / "sounds"))


async def build(cfg, engine, **kw):
    service = GreetingService(cfg, sessionmaker(engine), sweep_interval=None)
    await service.ensure_generic()
    return service, await build_all(service, engine, **kw)


@needs_tools
@pytest.mark.parametrize("python", [None, "/nonexistent/python3"], ids=["child", "thread-fallback"])
async def test_build_all_gives_each_customer_the_services_greeting(cfg, engine, python):
    ids = await seed(engine)
    seen = []
    service, report = await build(cfg, engine, batch=3, linker_python=python, progress=lambda d, t: seen.append((d, t)))
    assert (report.examined, report.recorded, report.failed, report.errors) == (8, 8, 0, [])
    assert report.syntheses == 3  # 王先生, 李女士, Mr. Smith: once each (the generic ones were made before)
    assert seen[0] == (0, 8) and seen[-1] == (8, 8)
    got = await greetings_of(engine, ids)
    want = [service.greeting_for(cid, *NAMES[n]).name for n, cid in enumerate(ids)]
    assert got == want
    assert got[5] == "greet-generic-zh" and got[6] == "greet-generic-en"
    sounds = Path(cfg.sounds_dir)
    wang = service.store.cache_path("王先生，您好", cfg.voice_zh)
    for n in (0, 1, 3):
        assert os.path.samefile(sounds / f"{got[n]}.wav", wang)
    assert not [p for p in sounds.iterdir() if p.name.startswith(".tmp-")]


@needs_tools
async def test_build_all_twice_and_with_existing_files_gives_the_same_result(cfg, engine):
    ids = await seed(engine)
    await build(cfg, engine)
    first = await greetings_of(engine, ids)
    files = sorted(os.listdir(cfg.sounds_dir))
    _, again = await build(cfg, engine)
    assert (again.examined, again.recorded) == (0, 0)
    async with engine.begin() as conn:  # the column lost, the files still there (EEXIST): recorded again
        await conn.execute(update(customers).values(greeting=None))
    _, redo = await build(cfg, engine)
    assert (redo.examined, redo.recorded, redo.failed, redo.syntheses) == (8, 8, 0, 0)
    assert await greetings_of(engine, ids) == first
    assert sorted(os.listdir(cfg.sounds_dir)) == files


@needs_tools
async def test_a_failed_synthesis_keeps_those_customers_generic(cfg, engine, tmp_path):
    espeak = tmp_path / "espeak-no-li.sh"  # refuses any text with 李 in it, speaks the rest
    espeak.write_text(
        '#!/bin/sh\ntext=$(cat)\ncase "$text" in *李*) echo "no voice for that" >&2; exit 1;; esac\n'
        f'printf %s "$text" | exec {shutil.which("espeak-ng")} "$@"\n'
    )
    espeak.chmod(0o755)
    cfg = GreetingConfig(sounds_dir=cfg.sounds_dir, espeak=str(espeak))
    ids = await seed(engine)
    _, report = await build(cfg, engine, batch=2)
    assert (report.examined, report.recorded, report.failed) == (8, 6, 2)
    assert any("no voice for that" in e for e in report.errors)
    got = await greetings_of(engine, ids)
    assert got[2] is None and got[7] is None  # the two 李女士: generic greeting plays, the sweeper retries
    assert all(g is not None for n, g in enumerate(got) if n not in (2, 7))


@needs_tools
async def test_a_failed_link_leaves_the_customer_unrecorded(cfg, engine, monkeypatch):
    ids = await seed(engine)
    real_submit = links.BulkLinker.submit

    def submit_after_losing_a_cache_file(self, pairs):
        smith = [s for s, t in pairs if t.startswith(f"greet-{ids[4]}-")]
        for source in smith:
            (Path(cfg.sounds_dir) / source).unlink()
        return real_submit(self, pairs)

    monkeypatch.setattr(links.BulkLinker, "submit", submit_after_losing_a_cache_file)
    _, report = await build(cfg, engine)
    assert (report.examined, report.recorded, report.failed) == (8, 7, 1)
    assert any("ENOENT" in e for e in report.errors)
    got = await greetings_of(engine, ids)
    assert got[4] is None and all(g is not None for n, g in enumerate(got) if n != 4)
    assert not list(Path(cfg.sounds_dir).glob(f"greet-{ids[4]}-*"))


@needs_tools
async def test_build_all_respects_its_limit(cfg, engine):
    ids = await seed(engine)
    _, report = await build(cfg, engine, limit=5, batch=2)
    assert (report.examined, report.recorded) == (5, 5)
    assert [g is not None for g in await greetings_of(engine, ids)] == [True] * 5 + [False] * 3


# --- the command ---------------------------------------------------------------------------------


@needs_tools
def test_cli_import_builds_greetings_with_a_progress_bar(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from cti.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CTI_CONFIG", raising=False)
    env = {"CTI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}", "CTI_GREETING_SOUNDS_DIR": str(tmp_path / "sounds")}
    csv = tmp_path / "c.csv"
    csv.write_text(
        "phones,family_name,given_name,title,language,vip,dealer,email,products\n"
        "13800138000,王,伟,先生,zh,no,,,\n13800138001,王,芳,先生,zh,no,,,\n"
        "+1 415 555 2671,Smith,John,Mr,en,no,,,\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["customers", "import", str(csv)], env=env)
    assert result.exit_code == 0, result.output
    assert "greetings" in result.output and "3 greeting(s) recorded" in result.output
    show = CliRunner().invoke(main, ["customers", "show", "13800138001"], env=env)
    name = show.output.split("greeting: ")[1].split()[0]
    assert name.startswith("greet-") and (tmp_path / "sounds" / f"{name}.wav").is_file()
