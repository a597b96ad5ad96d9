"""0005: call_wrapups, the history of every wrap-up save (a second save is an edit, never an overwrite).

Existing wrap-ups (calls.disposition set) become version 1, with no known author.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from cti.db.migrations import sql_statements

revision = "0005"
description = "call_wrapups: wrap-up history"

_SQL = """
CREATE TABLE call_wrapups (
    id INTEGER PRIMARY KEY,
    call_id INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    agent_id INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    author TEXT NOT NULL,
    disposition TEXT NOT NULL,
    notes TEXT NOT NULL,
    saved_at TIMESTAMP WITH TIME ZONE NOT NULL,
    UNIQUE (call_id, version)
);
INSERT INTO call_wrapups (call_id, version, agent_id, author, disposition, notes, saved_at)
    SELECT id, 1, agent_id, '', disposition, COALESCE(notes, ''), COALESCE(ended_at, started_at)
    FROM calls WHERE disposition IS NOT NULL;
"""


async def upgrade(conn: AsyncConnection) -> None:
    for stmt in sql_statements(_SQL, conn.dialect.name):
        await conn.exec_driver_sql(stmt)
