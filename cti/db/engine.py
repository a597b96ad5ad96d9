"""Engine creation: one AsyncEngine per process, built by the composition root."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, echo: bool = False) -> AsyncEngine:
    """An AsyncEngine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    kwargs: dict[str, Any] = {"echo": echo}
    if is_sqlite(url):
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    return engine


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def sqlite_path(url: str) -> str:
    """The file path of an ``sqlite+aiosqlite:///PATH`` URL."""
    from sqlalchemy.engine import make_url

    return make_url(url).database or ""
