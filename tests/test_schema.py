"""schema.sql and cti/db/tables.py describe the same database, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect

from cti.db.schema import init_schema
from cti.db.tables import metadata


def _category(type_) -> str:
    name = type(type_).__name__.upper() if not isinstance(type_, str) else type_.upper()
    text = (str(type_) if not isinstance(type_, str) else type_).upper()
    for key, cat in (("BOOL", "bool"), ("INT", "int"), ("TIMESTAMP", "ts"), ("DATETIME", "ts"), ("DATE", "date"),
                     ("DOUBLE", "float"), ("FLOAT", "float"), ("REAL", "float"), ("TEXT", "text"), ("VARCHAR", "text"),
                     # SQLite reflects the declared 'TIMESTAMP WITH TIME ZONE' as NUMERIC affinity;
                     # the schema declares no other NUMERIC column.
                     ("NUMERIC", "ts")):
        if key in text or key in name:
            return cat
    return text


def _describe(sync_conn):
    insp = inspect(sync_conn)
    out = {}
    # Dialect-specific full-text objects (cti/kb/fts.py: FTS5 tables, GIN index) are not in schema.sql,
    # nor is the migrations' bookkeeping table (cti/db/migrations).
    for table in sorted(t for t in insp.get_table_names() if "_fts" not in t and t != "schema_migrations"):
        pk = tuple(sorted(insp.get_pk_constraint(table)["constrained_columns"]))
        # SQLite reports INTEGER PRIMARY KEY as nullable; a key column never is.
        cols = {c["name"]: (_category(c["type"]), bool(c["nullable"]) and c["name"] not in pk)
                for c in insp.get_columns(table)}
        fks = sorted((tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                     for f in insp.get_foreign_keys(table))
        idx = sorted((tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(table)
                     if not i["name"].startswith("sqlite_autoindex") and "_fts" not in i["name"])
        uniques = sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table))
        out[table] = {"columns": cols, "pk": pk, "fks": fks, "indexes": idx, "uniques": uniques}
    return out


async def test_schema_sql_matches_sqlalchemy_tables(db_url):
    from cti.db.engine import create_engine

    from_sql = create_engine(db_url)
    await init_schema(from_sql)
    async with from_sql.connect() as conn:
        actual = await conn.run_sync(_describe)
        await conn.run_sync(metadata.drop_all)
        await conn.commit()
        await conn.run_sync(metadata.create_all)
        await conn.commit()
        expected = await conn.run_sync(_describe)
    await from_sql.dispose()
    assert set(actual) == {t.name for t in metadata.sorted_tables}
    for table in expected:
        assert actual[table] == expected[table], table


async def test_init_schema_is_idempotent(engine):
    assert await init_schema(engine) is False


def test_top_level_schema_sql_is_the_packaged_one() -> None:
    """The repository's schema.sql (what admins read) is byte-identical to the one cti applies."""
    from importlib import resources
    from pathlib import Path

    top = Path(__file__).resolve().parent.parent / "schema.sql"
    packaged = resources.files("cti.db").joinpath("schema.sql").read_text(encoding="utf-8")
    assert top.read_text(encoding="utf-8") == packaged, "copy cti/db/schema.sql to ./schema.sql"
