"""0002: routing_rule_versions, the versioned routing rules edited from the web (/routing)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

revision = "0002"
description = "routing_rule_versions: versioned routing rules edited from the web"

_SQL = """
CREATE TABLE routing_rule_versions (
    id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL UNIQUE,
    rules TEXT NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    active BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX ix_routing_rule_versions_active ON routing_rule_versions (active);
"""


async def upgrade(conn: AsyncConnection) -> None:
    from cti.db.migrations import sql_statements

    for stmt in sql_statements(_SQL, conn.dialect.name):
        await conn.execute(text(stmt))
