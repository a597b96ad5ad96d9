"""``caller_facts``: the routing facts of every known caller number, one row per number.

The FastAGI hot path (cti/customers/lookup.py) reads one row of this table by its primary key,
the E.164 number: a single B-tree descent instead of a join of customer_phones, customers,
tickets and products (about seven descents). On the 1M-customer bench database, with the CPU
caches cold as they are between calls, that is about 29 µs against 45 µs per lookup.

The table is derived data and never written by the application: database triggers on
customers, customer_phones, products and tickets keep it equal to :data:`FACTS_SELECT` after
every write, whoever writes (cti, a script, psql). Bulk writers (the CSV import) may pause the
triggers inside their transaction and :func:`refresh` the customers they touched before it
commits; :func:`drift` compares the table with the join, for tests and ``cti db check``.

``product_lines`` is a bit set: appliances 1, mobile 2, office 4 (:data:`LINE_BITS`).
"""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cti.db.tables import OPEN_TICKET_STATES

#: product line -> its bit in caller_facts.product_lines
LINE_BITS = {"appliances": 1, "mobile": 2, "office": 4}
#: the caller_facts columns, in the order of FACTS_SELECT
COLUMNS = ("e164", "customer_id", "language", "vip", "greeting", "family_name", "given_name", "title",
           "open_complaint", "product_lines")
#: PostgreSQL: ``SET LOCAL`` of this setting to 'on' pauses the triggers for one transaction
PAUSE_SETTING = "cti.caller_facts_paused"

_STATUSES = ", ".join(f"'{s}'" for s in OPEN_TICKET_STATES)


def _complaint(cid: str) -> str:
    return (f"EXISTS (SELECT 1 FROM tickets t WHERE t.customer_id = {cid} AND t.category = 'complaint' "
            f"AND t.status IN ({_STATUSES}))")


def _lines(cid: str) -> str:
    return " + ".join(
        f"CASE WHEN EXISTS (SELECT 1 FROM products p WHERE p.customer_id = {cid} AND p.product_line = '{line}') "
        f"THEN {bit} ELSE 0 END"
        for line, bit in LINE_BITS.items()
    )


def _select(e164: str, where: str) -> str:
    return (f"SELECT {e164}, c.id, c.language, c.vip, c.greeting, c.family_name, c.given_name, c.title, "
            f"{_complaint('c.id')}, {_lines('c.id')} FROM customers c {where}")


#: What caller_facts must hold: the facts of every (number, customer), computed from the tables.
FACTS_SELECT = _select("ph.e164", "JOIN customer_phones ph ON ph.customer_id = c.id")
_INSERT = f"INSERT INTO caller_facts ({', '.join(COLUMNS)}) "
_SET_NAMES = ("language = NEW.language, vip = NEW.vip, greeting = NEW.greeting, family_name = NEW.family_name, "
              "given_name = NEW.given_name, title = NEW.title")
_NAME_COLUMNS = "language, vip, greeting, family_name, given_name, title"

# --------------------------------------------------------------------------- SQLite triggers
_SQLITE_TRIGGERS: dict[str, str] = {
    "caller_facts_phone_insert": f"""AFTER INSERT ON customer_phones BEGIN
        INSERT OR REPLACE INTO caller_facts ({', '.join(COLUMNS)}) {_select('NEW.e164', 'WHERE c.id = NEW.customer_id')};
    END""",
    "caller_facts_phone_update": f"""AFTER UPDATE OF e164, customer_id ON customer_phones BEGIN
        DELETE FROM caller_facts WHERE e164 = OLD.e164;
        INSERT OR REPLACE INTO caller_facts ({', '.join(COLUMNS)}) {_select('NEW.e164', 'WHERE c.id = NEW.customer_id')};
    END""",
    "caller_facts_phone_delete": """AFTER DELETE ON customer_phones BEGIN
        DELETE FROM caller_facts WHERE e164 = OLD.e164;
    END""",
    "caller_facts_customer_update": f"""AFTER UPDATE OF {_NAME_COLUMNS} ON customers BEGIN
        UPDATE caller_facts SET {_SET_NAMES} WHERE customer_id = NEW.id;
    END""",
    "caller_facts_customer_delete": """AFTER DELETE ON customers BEGIN
        DELETE FROM caller_facts WHERE customer_id = OLD.id;
    END""",
    "caller_facts_product_insert": f"""AFTER INSERT ON products BEGIN
        UPDATE caller_facts SET product_lines = {_lines('NEW.customer_id')} WHERE customer_id = NEW.customer_id;
    END""",
    "caller_facts_product_update": f"""AFTER UPDATE OF customer_id, product_line ON products BEGIN
        UPDATE caller_facts SET product_lines = {_lines('OLD.customer_id')} WHERE customer_id = OLD.customer_id;
        UPDATE caller_facts SET product_lines = {_lines('NEW.customer_id')} WHERE customer_id = NEW.customer_id;
    END""",
    "caller_facts_product_delete": f"""AFTER DELETE ON products BEGIN
        UPDATE caller_facts SET product_lines = {_lines('OLD.customer_id')} WHERE customer_id = OLD.customer_id;
    END""",
    "caller_facts_ticket_insert": f"""AFTER INSERT ON tickets BEGIN
        UPDATE caller_facts SET open_complaint = {_complaint('NEW.customer_id')} WHERE customer_id = NEW.customer_id;
    END""",
    "caller_facts_ticket_update": f"""AFTER UPDATE OF customer_id, category, status ON tickets BEGIN
        UPDATE caller_facts SET open_complaint = {_complaint('OLD.customer_id')} WHERE customer_id = OLD.customer_id;
        UPDATE caller_facts SET open_complaint = {_complaint('NEW.customer_id')} WHERE customer_id = NEW.customer_id;
    END""",
    "caller_facts_ticket_delete": f"""AFTER DELETE ON tickets BEGIN
        UPDATE caller_facts SET open_complaint = {_complaint('OLD.customer_id')} WHERE customer_id = OLD.customer_id;
    END""",
}

# --------------------------------------------------------------------------- PostgreSQL triggers
_PAUSED = f"IF current_setting('{PAUSE_SETTING}', true) = 'on' THEN RETURN NULL; END IF;"
# Under READ COMMITTED two transactions changing the same customer's tickets (or products) at once
# would each recompute the flag from a snapshot without the other's change; the second waits for the
# first's lock on the caller_facts row, then writes its stale value over it (PostgreSQL re-checks the
# row, not the subqueries). Locking the customer row first serializes them; the statements that
# follow take a fresh snapshot, which holds the change of the transaction waited for (tests/
# test_caller_facts.py). A row lock uses no slot of the shared lock table: bulk writes stay possible.
_LOCK_CUSTOMERS = """
        IF TG_OP <> 'INSERT' THEN PERFORM 1 FROM customers WHERE id = OLD.customer_id FOR NO KEY UPDATE; END IF;
        IF TG_OP <> 'DELETE' THEN PERFORM 1 FROM customers WHERE id = NEW.customer_id FOR NO KEY UPDATE; END IF;"""
_UPSERT = ("ON CONFLICT (e164) DO UPDATE SET "
           + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c != "e164"))
_PG_FUNCTIONS: dict[str, tuple[str, str]] = {
    # function name: (body, trigger clause)
    "cti_caller_facts_phones": (_LOCK_CUSTOMERS + f"""
        IF TG_OP <> 'INSERT' THEN DELETE FROM caller_facts WHERE e164 = OLD.e164; END IF;
        IF TG_OP <> 'DELETE' THEN
            {_INSERT}{_select('NEW.e164', 'WHERE c.id = NEW.customer_id')} {_UPSERT};
        END IF;""", "AFTER INSERT OR DELETE OR UPDATE OF e164, customer_id ON customer_phones"),
    "cti_caller_facts_customers": (f"""
        IF TG_OP = 'DELETE' THEN DELETE FROM caller_facts WHERE customer_id = OLD.id;
        ELSE UPDATE caller_facts SET {_SET_NAMES} WHERE customer_id = NEW.id;
        END IF;""", f"AFTER DELETE OR UPDATE OF {_NAME_COLUMNS} ON customers"),
    "cti_caller_facts_products": (_LOCK_CUSTOMERS + f"""
        IF TG_OP <> 'INSERT' THEN
            UPDATE caller_facts SET product_lines = {_lines('OLD.customer_id')} WHERE customer_id = OLD.customer_id;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            UPDATE caller_facts SET product_lines = {_lines('NEW.customer_id')} WHERE customer_id = NEW.customer_id;
        END IF;""", "AFTER INSERT OR DELETE OR UPDATE OF customer_id, product_line ON products"),
    "cti_caller_facts_tickets": (_LOCK_CUSTOMERS + f"""
        IF TG_OP <> 'INSERT' THEN
            UPDATE caller_facts SET open_complaint = {_complaint('OLD.customer_id')} WHERE customer_id = OLD.customer_id;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            UPDATE caller_facts SET open_complaint = {_complaint('NEW.customer_id')} WHERE customer_id = NEW.customer_id;
        END IF;""", "AFTER INSERT OR DELETE OR UPDATE OF customer_id, category, status ON tickets"),
}


def _pg_statements() -> list[str]:
    out = []
    for name, (body, clause) in _PG_FUNCTIONS.items():
        out.append(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                   f"BEGIN\n    {_PAUSED}\n{body}\n    RETURN NULL;\nEND $$")
        out.append(f"CREATE OR REPLACE TRIGGER {name} {clause} FOR EACH ROW EXECUTE FUNCTION {name}()")
    return out


def _sqlite_statements() -> list[str]:
    return [f"CREATE TRIGGER IF NOT EXISTS {name} {body}" for name, body in _SQLITE_TRIGGERS.items()]


async def install(conn: AsyncConnection) -> None:
    """Create the triggers that keep caller_facts correct (idempotent; the table must exist)."""
    stmts = _pg_statements() if conn.dialect.name == "postgresql" else _sqlite_statements()
    for stmt in stmts:
        await conn.exec_driver_sql(stmt)


async def pause(conn: AsyncConnection) -> None:
    """Stop the triggers until :func:`resume` or the end of ``conn``'s transaction, for this
    transaction only: a bulk writer then calls :func:`refresh` for what it touched.

    SQLite: the triggers are dropped inside the transaction (SQLite has a single writer, so
    no other write can miss them, and a rollback brings them back), so call :func:`resume`
    before the commit. PostgreSQL: a transaction-local setting the trigger functions read;
    other sessions keep their triggers.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT set_config(:k, 'on', true)"), {"k": PAUSE_SETTING})
        return
    await _sqlite_begin(conn)
    for name in _SQLITE_TRIGGERS:
        await conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")


async def resume(conn: AsyncConnection) -> None:
    """Undo :func:`pause` (still inside the same transaction)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT set_config(:k, 'off', true)"), {"k": PAUSE_SETTING})
        return
    await install(conn)


async def _sqlite_begin(conn: AsyncConnection) -> None:
    """Open the write transaction now: Python's sqlite3 begins one lazily, before the first
    INSERT/UPDATE/DELETE only, so DDL issued first would commit on its own."""
    raw = await conn.get_raw_connection()
    if not raw.driver_connection.in_transaction:
        await conn.exec_driver_sql("BEGIN IMMEDIATE")


#: customer ids per statement (SQLite's default limit of bound variables is 32766)
_BATCH = 10_000


async def refresh(conn: AsyncConnection, customer_ids: Iterable[int], *, new: bool = False) -> None:
    """Recompute the caller_facts rows of ``customer_ids`` from the tables. ``new``: customers
    created in this transaction while the triggers rested, which have no rows yet."""
    ids = sorted(set(customer_ids))
    for i in range(0, len(ids), _BATCH):
        marks = ", ".join(str(int(c)) for c in ids[i : i + _BATCH])  # ints only: no injection, no bind limit
        if not new:
            await conn.exec_driver_sql(f"DELETE FROM caller_facts WHERE customer_id IN ({marks})")
        await conn.exec_driver_sql(_INSERT + FACTS_SELECT + f" WHERE c.id IN ({marks})")


async def refresh_after_bulk(conn: AsyncConnection, created: Iterable[int], updated: Iterable[int]) -> None:
    """What a bulk writer calls before its commit, triggers paused: recompute the customers it
    created and updated, or the whole table when they are at least half of all customers."""
    created, updated = set(created), set(updated)
    if not created and not updated:
        return
    total = int((await conn.exec_driver_sql("SELECT count(*) FROM customers")).scalar_one())
    if 2 * len(created | updated) >= total:
        await rebuild(conn)
        return
    await refresh(conn, created - updated, new=True)
    await refresh(conn, updated)


async def rebuild(conn: AsyncConnection) -> int:
    """Recompute the whole table; returns its row count."""
    await conn.exec_driver_sql("DELETE FROM caller_facts")
    await conn.exec_driver_sql(_INSERT + FACTS_SELECT)
    return int((await conn.exec_driver_sql("SELECT count(*) FROM caller_facts")).scalar_one())


async def drift(conn: AsyncConnection, limit: int = 20) -> list[tuple[str, tuple | None, tuple | None]]:
    """Numbers whose caller_facts row differs from the tables: (e164, stored, expected), the
    first ``limit`` by number; None for a row that is missing on that side. The comparison runs
    in the database (EXCEPT both ways), so it does not load a million rows into Python."""
    stored = f"SELECT {', '.join(COLUMNS)} FROM caller_facts"
    keys: set[str] = set()
    for a, b in ((stored, FACTS_SELECT), (FACTS_SELECT, stored)):
        rows = await conn.exec_driver_sql(f"SELECT d.e164 FROM ({a} EXCEPT {b}) AS d ORDER BY 1 LIMIT {int(limit)}")
        keys.update(r[0] for r in rows)
    wanted = sorted(keys)[:limit]
    if not wanted:
        return []
    where = "IN (" + ", ".join(_quote(k) for k in wanted) + ")"
    have = {r[0]: _norm(r) for r in await conn.exec_driver_sql(f"{stored} WHERE e164 {where}")}
    want = {r[0]: _norm(r) for r in await conn.exec_driver_sql(f"{FACTS_SELECT} WHERE ph.e164 {where}")}
    return [(k, have.get(k), want.get(k)) for k in wanted]


def _quote(value: str) -> str:
    """A SQL string literal (the keys come from the database itself; quotes are doubled anyway)."""
    return "'" + str(value).replace("'", "''") + "'"


def _norm(row: tuple) -> tuple:
    """Compare booleans and 0/1 alike (SQLite stores both as integers)."""
    return tuple(int(v) if isinstance(v, bool) else v for v in row)
