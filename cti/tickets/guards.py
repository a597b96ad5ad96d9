"""Database guards for ticket history: rows cannot be changed, nor deleted while their ticket exists.

Triggers are dialect-specific, so they are not in schema.sql; :func:`install_history_guard`
is called by ``cti.db.schema.init_schema`` after the tables exist (idempotent).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

MESSAGE = "ticket_history is immutable"

_SQLITE = (
    f"""CREATE TRIGGER IF NOT EXISTS ticket_history_no_update BEFORE UPDATE ON ticket_history
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS ticket_history_no_delete BEFORE DELETE ON ticket_history
    WHEN EXISTS (SELECT 1 FROM tickets WHERE id = OLD.ticket_id)
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
)

_POSTGRESQL = (
    f"""CREATE OR REPLACE FUNCTION cti_ticket_history_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT 1 FROM tickets WHERE id = OLD.ticket_id) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
    END $$""",
    """CREATE OR REPLACE TRIGGER ticket_history_guard BEFORE UPDATE OR DELETE ON ticket_history
    FOR EACH ROW EXECUTE FUNCTION cti_ticket_history_guard()""",
)


async def install_history_guard(conn: AsyncConnection) -> None:
    """Create the immutability triggers for ``conn``'s dialect (safe to call again)."""
    stmts = _POSTGRESQL if conn.dialect.name == "postgresql" else _SQLITE
    for stmt in stmts:
        await conn.execute(text(stmt))
