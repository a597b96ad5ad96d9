"""Versioned migrations on SQLite and the real PostgreSQL: from an empty database, from the
previous release's schema (no version table), and several nodes starting at once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect, text
from test_schema import _describe

from cti.db import migrations
from cti.db.engine import create_engine
from cti.db.schema import init_schema
from cti.db.tables import metadata


async def describe(engine) -> dict:
    async with engine.connect() as conn:
        return await conn.run_sync(_describe)


async def expected_from_tables(engine) -> dict:
    """What cti/db/tables.py describes (which tests/test_schema.py proves equal to schema.sql)."""
    async with engine.connect() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.commit()
        await conn.run_sync(metadata.create_all)
        await conn.commit()
        return await conn.run_sync(_describe)


async def version_rows(engine) -> list[str]:
    async with engine.connect() as conn:
        return [r[0] for r in await conn.execute(text("SELECT revision FROM schema_migrations ORDER BY revision"))]


async def names(engine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda c: set(inspect(c).get_table_names()) | {i["name"] for i in inspect(c).get_indexes("kb_articles")})


async def test_replaying_every_revision_on_an_empty_database_gives_schema_sql(db_url: str) -> None:
    eng = create_engine(db_url)
    try:
        result = await migrations.upgrade(eng, fresh="replay")
        assert result.created and result.applied == [r.revision for r in migrations.revisions()]
        assert await version_rows(eng) == result.applied
        assert await migrations.current_revision(eng) == migrations.head()
        assert any("_fts" in n for n in await names(eng))  # the dialect's full-text objects too
        actual = await describe(eng)
        expected = await expected_from_tables(eng)
        assert set(actual) == set(expected)
        for table in expected:
            assert actual[table] == expected[table], (
                f"{table}: replaying the revisions does not give schema.sql; add a revision in cti/db/migrations")
    finally:
        await eng.dispose()


async def test_a_new_database_gets_schema_sql_stamped_at_the_head(db_url: str) -> None:
    eng = create_engine(db_url)
    try:
        assert await init_schema(eng) is True
        assert await version_rows(eng) == [r.revision for r in migrations.revisions()]
        assert (await migrations.upgrade(eng)).applied == []  # nothing pending
        assert await init_schema(eng) is False
    finally:
        await eng.dispose()


async def test_a_database_of_the_previous_release_is_recognised_and_kept(db_url: str) -> None:
    eng = create_engine(db_url)
    try:
        # what the release before versioning did: schema.sql + dialect objects, no version table
        from cti.db.migrations.r0001_baseline import upgrade as baseline

        async with eng.begin() as conn:
            await baseline(conn)
            await conn.execute(text("INSERT INTO customers (family_name, given_name, created_at, updated_at) VALUES ('Wang', 'Wei', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        assert "schema_migrations" not in await names(eng)
        assert await init_schema(eng) is False
        assert await version_rows(eng) == [r.revision for r in migrations.revisions()]
        async with eng.connect() as conn:
            assert (await conn.execute(text("SELECT family_name FROM customers"))).scalar_one() == "Wang"
        actual = await describe(eng)
        expected = await expected_from_tables(eng)
        for table in expected:
            assert actual[table] == expected[table], table
    finally:
        await eng.dispose()


async def test_a_database_from_a_newer_release_is_refused(db_url: str) -> None:
    eng = create_engine(db_url)
    try:
        await init_schema(eng)
        async with eng.begin() as conn:
            await conn.execute(text("INSERT INTO schema_migrations VALUES ('9999', 'from the future', 'now')"))
        with pytest.raises(RuntimeError, match="9999"):
            await init_schema(eng)
    finally:
        await eng.dispose()


@pytest.mark.parametrize("db_url", [pytest.param("pg", marks=pytest.mark.pg)], indirect=True)
async def test_nodes_starting_together_migrate_once(db_url: str) -> None:
    engines = [create_engine(db_url) for _ in range(3)]
    try:
        created = await asyncio.gather(*(init_schema(e) for e in engines))
        assert sorted(created) == [False, False, True]
        assert await version_rows(engines[0]) == [r.revision for r in migrations.revisions()]
    finally:
        for e in engines:
            await e.dispose()
