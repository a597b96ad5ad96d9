"""The knowledge base's full-text index, per dialect (not in schema.sql, which stays portable).

- SQLite: an external-content FTS5 table ``kb_articles_fts`` over ``kb_articles.search_text``
  (tokenizer unicode61: the tokens are already CJK bigrams and words), kept in step by triggers.
- PostgreSQL: a GIN index ``ix_kb_articles_fts`` on ``to_tsvector('simple', search_text)``.

:func:`install_search_index` is called by ``cti.db.schema.init_schema`` (idempotent).
tests/test_schema.py ignores these objects (names containing ``_fts``).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

#: Names of the dialect-specific objects (tables and indexes) contain this.
MARKER = "_fts"

_SQLITE = (
    """CREATE VIRTUAL TABLE IF NOT EXISTS kb_articles_fts USING fts5(
        search_text, content='kb_articles', content_rowid='id', tokenize='unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER IF NOT EXISTS kb_articles_fts_insert AFTER INSERT ON kb_articles BEGIN
        INSERT INTO kb_articles_fts (rowid, search_text) VALUES (new.id, new.search_text); END""",
    """CREATE TRIGGER IF NOT EXISTS kb_articles_fts_delete AFTER DELETE ON kb_articles BEGIN
        INSERT INTO kb_articles_fts (kb_articles_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); END""",
    """CREATE TRIGGER IF NOT EXISTS kb_articles_fts_update AFTER UPDATE OF search_text ON kb_articles BEGIN
        INSERT INTO kb_articles_fts (kb_articles_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
        INSERT INTO kb_articles_fts (rowid, search_text) VALUES (new.id, new.search_text); END""",
)

_POSTGRESQL = (
    "CREATE INDEX IF NOT EXISTS ix_kb_articles_fts ON kb_articles USING gin (to_tsvector('simple', search_text))",
)


async def install_search_index(conn: AsyncConnection) -> None:
    """Create the full-text index for ``conn``'s dialect (safe to call again)."""
    stmts = _POSTGRESQL if conn.dialect.name == "postgresql" else _SQLITE
    for stmt in stmts:
        await conn.execute(text(stmt))


async def rebuild_search_index(conn: AsyncConnection) -> None:
    """Rebuild the SQLite FTS5 table from ``kb_articles`` (PostgreSQL's index needs no rebuild)."""
    if conn.dialect.name == "sqlite":
        await conn.execute(text("INSERT INTO kb_articles_fts (kb_articles_fts) VALUES ('rebuild')"))
