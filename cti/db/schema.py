"""Apply ``schema.sql`` to an empty database (SQLite or PostgreSQL); later schema changes are
versioned migrations (``cti.db.migrations``), which :func:`init_schema` applies."""

from __future__ import annotations

from importlib import resources

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine


class SchemaError(RuntimeError):
    pass


def schema_sql(dialect: str) -> list[str]:
    """The statements of schema.sql for ``dialect`` ("sqlite" or "postgresql")."""
    from cti.db.migrations import sql_statements

    return sql_statements(resources.files("cti.db").joinpath("schema.sql").read_text(encoding="utf-8"), dialect)


async def existing_tables(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: inspect(c).get_table_names())


async def init_schema(engine: AsyncEngine, *, exist_ok: bool = True) -> bool:
    """Create the schema in an empty database, else apply pending migrations (cti.db.migrations);
    return False if it was already there."""
    from cti.db.migrations import upgrade

    if not exist_ok and "customers" in await existing_tables(engine):
        raise SchemaError("the database already holds a cti schema")
    result = await upgrade(engine)
    return result.created


async def install_dialect_objects(conn) -> None:
    """Dialect-specific objects kept out of the portable schema.sql (idempotent).

    Full-text index of the knowledge base (FTS5 / GIN tsvector) and the ticket-history
    immutability triggers; tests/test_schema.py ignores them (names containing ``_fts``).
    """
    from cti.kb.fts import install_search_index
    from cti.tickets.guards import install_history_guard

    await install_search_index(conn)
    await install_history_guard(conn)


async def drop_all(engine: AsyncEngine) -> None:
    """Drop every cti table (tests only)."""
    from cti.db.tables import metadata

    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
