"""0004: caller_facts, the routing facts of each caller number, kept by triggers.

The FastAGI lookup reads one row by E.164 instead of joining four tables
(cti/customers/facts.py). The table is filled from the existing data here.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from cti.customers import facts
from cti.db.migrations import sql_statements

revision = "0004"
description = "caller_facts: one-row caller lookup, kept by triggers"

_SQL = """
CREATE TABLE caller_facts (
    e164 TEXT NOT NULL PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    language TEXT NOT NULL,
    vip BOOLEAN NOT NULL,
    greeting TEXT,
    family_name TEXT NOT NULL,
    given_name TEXT NOT NULL,
    title TEXT NOT NULL,
    open_complaint BOOLEAN NOT NULL,
    product_lines INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX ix_caller_facts_customer_id ON caller_facts (customer_id);
"""


async def upgrade(conn: AsyncConnection) -> None:
    for stmt in sql_statements(_SQL, conn.dialect.name):
        await conn.exec_driver_sql(stmt)
    await facts.install(conn)
    await facts.rebuild(conn)
