"""0001 baseline: the schema of the first versioned release (frozen copy of schema.sql)."""

from __future__ import annotations

from importlib import resources

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

revision = "0001"
description = "baseline: schema.sql of the first versioned release"


async def upgrade(conn: AsyncConnection) -> None:
    from cti.db.migrations import sql_statements
    from cti.db.schema import install_dialect_objects

    sql = resources.files("cti.db.migrations").joinpath("r0001_baseline.sql").read_text(encoding="utf-8")
    for stmt in sql_statements(sql, conn.dialect.name):
        await conn.execute(text(stmt))
    await install_dialect_objects(conn)
