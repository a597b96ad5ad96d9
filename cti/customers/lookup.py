"""Caller lookup for the FastAGI hot path: one row by primary key, no thread hop.

SQLAlchemy is the data layer everywhere else; on this path it costs more than the whole
FastAGI dialogue (bench/agi_bench.py). So the lookup runs the same single query through
the fastest driver path each database offers, against ``caller_facts`` (cti/customers/facts.py:
the routing facts of each number in one row, kept by triggers; one B-tree descent per call):

* SQLite: a synchronous, read-only ``sqlite3`` connection used directly on the event loop
  (an indexed point query takes tens of microseconds; WAL lets it read while others write).
* PostgreSQL: an ``asyncpg`` pool; asyncpg prepares and caches the statement per connection.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Protocol

from sqlalchemy.engine import make_url

from cti.customers.facts import LINE_BITS
from cti.routing.rules import CallerFacts

_SQL = """
SELECT customer_id, language, vip, greeting, family_name, given_name, title, open_complaint, product_lines
FROM caller_facts WHERE e164 = {param}
"""

#: SQLite memory map of the hot-path connection (address space, not memory: pages are the OS's)
MMAP_BYTES = 1 << 30


#: caller_facts.product_lines (bit set, cti/customers/facts.py) -> the product lines, built once
_LINESETS = tuple(
    frozenset(line for line, bit in LINE_BITS.items() if mask & bit) for mask in range(2 ** len(LINE_BITS))
)


def _facts(row: Any) -> CallerFacts:
    return CallerFacts(
        customer_id=int(row[0]),
        language=row[1],
        vip=bool(row[2]),
        greeting=row[3],
        family_name=row[4],
        given_name=row[5],
        title=row[6],
        open_complaint=bool(row[7]),
        product_lines=_LINESETS[row[8]],
    )


class CallerLookup(Protocol):
    async def lookup(self, e164: str) -> CallerFacts | None: ...

    async def close(self) -> None: ...


class SqliteCallerLookup:
    """Read-only sqlite3 connection; the query runs on the loop thread (no executor hop)."""

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=0.05, isolation_level=None
        )
        self._conn.execute("PRAGMA query_only=ON")
        # Memory-mapped reads: a page missing from SQLite's cache costs no pread() and copy. It
        # mattered for the seven-descent join; with caller_facts (one descent, ~4 pages) the
        # bench measures the same CPU with or without it (2026-12-06).
        self._conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        self._sql = _SQL.format(param="?")

    async def lookup(self, e164: str) -> CallerFacts | None:
        row = self._conn.execute(self._sql, (e164,)).fetchone()
        return _facts(row) if row else None

    async def close(self) -> None:
        self._conn.close()


class PgCallerLookup:
    """asyncpg pool with the statement prepared once per connection."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._sql = _SQL.format(param="$1")

    @classmethod
    async def connect(cls, url: str, min_size: int = 2, max_size: int = 10) -> "PgCallerLookup":
        import asyncpg

        u = make_url(url)
        pool = await asyncpg.create_pool(
            host=u.host or "127.0.0.1",
            port=u.port or 5432,
            user=u.username,
            password=u.password,
            database=u.database,
            min_size=min_size,
            max_size=max_size,
        )
        return cls(pool)

    async def lookup(self, e164: str) -> CallerFacts | None:
        row = await self._pool.fetchrow(self._sql, e164)
        return _facts(row) if row else None

    async def close(self) -> None:
        await self._pool.close()


async def open_lookup(database_url: str) -> CallerLookup:
    """The hot-path lookup for ``database_url`` (the schema must exist)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return SqliteCallerLookup(url.database or "")
    return await PgCallerLookup.connect(database_url)
