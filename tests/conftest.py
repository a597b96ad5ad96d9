"""Shared fixtures: a fresh database on SQLite and on the local PostgreSQL, captures on disk."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import AsyncIterator

import asyncpg
import pytest

from cti.config import Settings, load_settings
from cti.db.engine import create_engine
from cti.db.schema import init_schema

ROOT = Path(__file__).resolve().parent.parent
#: Byte-exact AMI/FastAGI transcripts of a real Asterisk 22.10.1 (a copy of the project's
#: shared/asterisk-captures, README inside); CTI_CAPTURES points elsewhere if needed.
CAPTURES = Path(os.environ.get("CTI_CAPTURES", ROOT / "tests" / "captures"))

#: Admin URL of the local PostgreSQL (trust auth); each test gets its own database on it.
PG_ADMIN = os.environ.get("CTI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def captures() -> Path:
    return CAPTURES


async def _create_pg_database() -> str:
    name = "cti_t_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def _drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _pg_url(name: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database URL, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}"
        return
    name = await _create_pg_database()
    try:
        yield _pg_url(name)
    finally:
        await _drop_pg_database(name)


@pytest.fixture
async def engine(db_url: str):
    """An engine on a database that holds the cti schema."""
    eng = create_engine(db_url)
    await init_schema(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Default settings pointed at the test database and a private sounds directory."""
    s = load_settings(None, env={})
    s = s.replace("database", url=db_url)
    return s.replace("greeting", sounds_dir=str(tmp_path / "sounds"))
