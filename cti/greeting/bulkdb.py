"""The database side of bulk greeting builds, at driver level (aiosqlite or asyncpg): no per-row SQLAlchemy work.

Rows are plain tuples. A greeting is recorded only while the customer still has the name it was made
from and no greeting yet (compare-and-set), exactly like :meth:`GreetingService._record_many`.
"""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

#: (id, family_name, given_name, title, language)
BacklogRow = tuple[int, str, str, str, str]
#: (sound name, id, family_name, given_name, title, language)
Record = tuple[str, int, str, str, str, str]

_COLUMNS = "id, family_name, given_name, title, language"

_SQLITE_COUNT = "SELECT count(*) FROM customers WHERE greeting IS NULL"
_SQLITE_FETCH = f"SELECT {_COLUMNS} FROM customers WHERE greeting IS NULL AND id > ? ORDER BY id LIMIT ?"
_SQLITE_RECORD = (
    "UPDATE customers SET greeting = ? WHERE id = ? AND family_name = ? AND given_name = ? AND title = ?"
    " AND language = ? AND greeting IS NULL"
)

_PG_COUNT = _SQLITE_COUNT
_PG_FETCH = f"SELECT {_COLUMNS} FROM customers WHERE greeting IS NULL AND id > $1 ORDER BY id LIMIT $2"
_PG_RECORD = (
    "UPDATE customers AS c SET greeting = u.sound"
    " FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[])"
    " AS u(sound, id, family_name, given_name, title, language)"
    " WHERE c.id = u.id AND c.family_name = u.family_name AND c.given_name = u.given_name"
    " AND c.title = u.title AND c.language = u.language AND c.greeting IS NULL"
)


def _is_pg(engine: AsyncEngine) -> bool:
    name = engine.dialect.name
    if name not in ("sqlite", "postgresql"):
        raise ValueError(f"bulk greeting builds support SQLite and PostgreSQL, not {name!r}")
    return name == "postgresql"


async def count_backlog(engine: AsyncEngine) -> int:
    """How many customers have no greeting yet."""
    async with engine.connect() as conn:
        drv: Any = (await conn.get_raw_connection()).driver_connection
        if _is_pg(engine):
            return int(await drv.fetchval(_PG_COUNT))
        async with drv.execute(_SQLITE_COUNT) as cur:
            row = await cur.fetchone()
        return int(row[0])


async def fetch_backlog(engine: AsyncEngine, after_id: int, limit: int) -> list[BacklogRow]:
    """Up to ``limit`` customers without a greeting and with ``id > after_id``, by id."""
    async with engine.connect() as conn:
        drv: Any = (await conn.get_raw_connection()).driver_connection
        if _is_pg(engine):
            return [tuple(r) for r in await drv.fetch(_PG_FETCH, after_id, limit)]  # type: ignore[misc]
        async with drv.execute(_SQLITE_FETCH, (after_id, limit)) as cur:
            return list(await cur.fetchall())


async def record_greetings(engine: AsyncEngine, records: Sequence[Record]) -> int:
    """Set ``greeting`` of each record's customer (if unchanged and still NULL) in one transaction; returns the count."""
    if not records:
        return 0
    async with engine.connect() as conn:
        drv: Any = (await conn.get_raw_connection()).driver_connection
        if _is_pg(engine):
            columns = [list(col) for col in zip(*records)]
            async with drv.transaction():
                status = await drv.execute(_PG_RECORD, *columns)
            return int(status.split()[-1])
        await drv.execute("BEGIN IMMEDIATE")
        try:
            cur = await drv.executemany(_SQLITE_RECORD, records)
            count = cur.rowcount
            await cur.close()
            await drv.commit()
        except BaseException:
            await drv.rollback()
            raise
        return int(count)
