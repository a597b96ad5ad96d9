"""``cti greetings``: build, say, preview (the real command, real tools, SQLite)."""

from __future__ import annotations

import asyncio
import shutil
import wave
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select

from cti.cli import main
from cti.db.engine import create_engine
from cti.db.schema import init_schema
from cti.db.tables import customers

pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")), reason="espeak-ng and sox are not installed"
)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CTI_CONFIG", raising=False)
    return {
        "CTI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}",
        "CTI_GREETING_SOUNDS_DIR": str(tmp_path / "sounds"),
    }


def wav_params(path: Path) -> tuple[int, int, int, bool]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes() > 0


def test_say_writes_an_asterisk_playable_wav(env, tmp_path):
    out = tmp_path / "hello.wav"
    result = CliRunner().invoke(main, ["greetings", "say", "王先生，您好", "--lang", "zh", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert wav_params(out) == (8000, 1, 2, True)


def test_say_reads_option_like_text_from_stdin(env, tmp_path):
    out = tmp_path / "x.wav"
    result = CliRunner().invoke(main, ["greetings", "say", "-", "--lang", "en", "--out", str(out)], input="--help -rf\n", env=env)
    assert result.exit_code == 0, result.output
    assert wav_params(out) == (8000, 1, 2, True)


def test_say_reports_a_missing_tool(env, tmp_path):
    result = CliRunner().invoke(
        main, ["greetings", "say", "hi", "--lang", "en", "--out", str(tmp_path / "x.wav")],
        env={**env, "CTI_GREETING_ESPEAK": "/nonexistent/espeak-ng"},
    )
    assert result.exit_code == 1
    assert "greeting.espeak" in result.output


def test_build_makes_the_fixed_sounds(env, tmp_path):
    result = CliRunner().invoke(main, ["greetings", "build"], env=env)
    assert result.exit_code == 0, result.output
    names = [line for line in result.output.splitlines() if line.startswith("cti/")]
    assert names == [
        "cti/greet-generic-zh", "cti/greet-generic-en", "cti/ivr-menu-zh",
        "cti/ivr-menu-en", "cti/afterhours-zh", "cti/afterhours-en",
    ]
    for name in names:
        assert wav_params(tmp_path / "sounds" / f"{name.split('/', 1)[1]}.wav")[:3] == (8000, 1, 2)


def seed_customers(url: str, people: list[dict[str, str]]) -> None:
    async def go() -> None:
        engine = create_engine(url)
        await init_schema(engine)
        now = datetime.now(timezone.utc)
        async with engine.begin() as conn:
            await conn.execute(insert(customers), [{**p, "created_at": now, "updated_at": now} for p in people])
        await engine.dispose()

    asyncio.run(go())


def greeting_column(url: str) -> list[str | None]:
    async def go() -> list[str | None]:
        engine = create_engine(url)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(customers.c.greeting).order_by(customers.c.id))).scalars().all()
        await engine.dispose()
        return list(rows)

    return asyncio.run(go())


def test_build_all_gives_every_customer_a_greeting(env, tmp_path):
    url = env["CTI_DATABASE_URL"]
    seed_customers(url, [{"family_name": "王", "given_name": "伟", "title": "先生", "language": "zh"},
                         {"family_name": "Smith", "given_name": "John", "title": "Mr", "language": "en"}])
    result = CliRunner().invoke(main, ["greetings", "build", "--all"], env=env)
    assert result.exit_code == 0, result.output
    assert "2 greeting(s) recorded" in result.output
    names = greeting_column(url)
    assert names[0].startswith("greet-1-") and names[1].startswith("greet-2-")
    for name in names:
        assert wav_params(tmp_path / "sounds" / f"{name}.wav") == (8000, 1, 2, True)


def test_build_all_with_a_limit_leaves_the_rest_and_a_second_run_finishes(env):
    url = env["CTI_DATABASE_URL"]
    seed_customers(url, [{"family_name": name, "title": "先生", "language": "zh"} for name in ("王", "李", "王")])
    first = CliRunner().invoke(main, ["greetings", "build", "--all", "--limit", "1"], env=env)
    assert first.exit_code == 0, first.output
    assert "1 greeting(s) recorded" in first.output and greeting_column(url).count(None) == 2
    second = CliRunner().invoke(main, ["greetings", "build", "--all"], env=env)
    assert second.exit_code == 0, second.output
    assert "2 greeting(s) recorded" in second.output and greeting_column(url).count(None) == 0


def test_build_all_without_a_speech_tool_fails_clearly(env):
    result = CliRunner().invoke(main, ["greetings", "build", "--all"],
                                env={**env, "CTI_GREETING_ESPEAK": "/nonexistent/espeak-ng"})
    assert result.exit_code == 1
    assert "greeting.espeak" in result.output


def test_preview_shows_text_and_sound_name(env):
    result = CliRunner().invoke(
        main, ["greetings", "preview", "--family-name", "Smith", "--title", "Mr", "--lang", "en", "--customer-id", "9"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "text:  Hello Mr. Smith" in result.output
    assert "sound: cti/greet-9-" in result.output


def test_prune_runs_on_an_empty_install(env):
    asyncio.run(_init(env["CTI_DATABASE_URL"]))
    result = CliRunner().invoke(main, ["greetings", "prune"], env=env)
    assert result.exit_code == 0, result.output
    assert "0 stale greeting file(s) removed" in result.output


async def _init(url: str) -> None:
    engine = create_engine(url)
    await init_schema(engine)
    await engine.dispose()
