"""Knowledge-base articles: add, update, import, full-text search (Chinese and English), suggestions.

Search tokens come from :mod:`cti.kb.tokens` (CJK bigrams + words) and are matched by SQLite
FTS5 or PostgreSQL ``to_tsvector('simple', ...)`` (:mod:`cti.kb.fts`): every query term must
match; when none does, any term may (ranked by bm25 / ts_rank).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Sequence

from sqlalchemy import case, func, literal, literal_column, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cti.db.tables import PRODUCT_LINES, kb_articles
from cti.kb.tokens import query_terms, search_text

MAX_TITLE = 300
MAX_BODY = 100_000
SNIPPET = 200


class ArticleError(ValueError):
    """An article that cannot be stored; the message says why."""


def normalize_tags(tags: str | Iterable[str] | None) -> str:
    """Space-separated, lower case, unique, in order: ``"Wi-Fi, ivr:2 wifi"`` -> ``"wi-fi ivr:2 wifi"``."""
    if tags is None:
        return ""
    items = tags.replace(",", " ").split() if isinstance(tags, str) else [t for tag in tags for t in str(tag).replace(",", " ").split()]
    seen: dict[str, None] = {}
    for t in items:
        seen.setdefault(t.strip().lower()[:64], None)
    return " ".join(t for t in seen if t)


def _check(title: str, body: str, product_line: str | None) -> tuple[str, str]:
    title = " ".join((title or "").split())
    body = (body or "").replace("\x00", "").strip()
    if not title or len(title) > MAX_TITLE:
        raise ArticleError(f"title: 1-{MAX_TITLE} characters")
    if not body or len(body) > MAX_BODY:
        raise ArticleError(f"body: 1-{MAX_BODY} characters")
    if product_line is not None and product_line not in PRODUCT_LINES:
        raise ArticleError(f"product_line: {product_line!r} (expected {', '.join(PRODUCT_LINES)} or none)")
    return title, body


def article_values(title: str, body: str, product_line: str | None, tags: Any, created_by: int | None,
                   now: datetime) -> dict[str, Any]:
    title, body = _check(title, body, product_line or None)
    tag_text = normalize_tags(tags)
    # the title counts twice: a hit there ranks above a hit in the body
    return {"title": title, "body": body, "product_line": product_line or None, "tags": tag_text,
            "search_text": search_text(title, title, tag_text, body), "created_by": created_by,
            "created_at": now, "updated_at": now}


def article_dict(row: Any, *, full: bool = True) -> dict[str, Any]:
    d = {"id": row.id, "title": row.title, "product_line": row.product_line,
         "tags": row.tags.split() if row.tags else [], "created_by": row.created_by,
         "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat()}
    if full:
        d["body"] = row.body
    else:
        d["snippet"] = row.body[:SNIPPET] + ("…" if len(row.body) > SNIPPET else "")
    return d


async def add_article(conn: AsyncConnection, *, title: str, body: str, now: datetime, product_line: str | None = None,
                      tags: Any = None, created_by: int | None = None) -> int:
    values = article_values(title, body, product_line, tags, created_by, now)
    return int((await conn.execute(kb_articles.insert().values(**values).returning(kb_articles.c.id))).scalar_one())


async def import_articles(conn: AsyncConnection, records: Iterable[dict[str, Any]], now: datetime) -> int:
    """Bulk insert ``{title, body, product_line?, tags?}`` records; all or nothing (ArticleError names the record)."""
    rows = []
    for n, rec in enumerate(records, start=1):
        try:
            rows.append(article_values(str(rec.get("title", "")), str(rec.get("body", "")),
                                       (str(rec.get("product_line") or "").strip() or None), rec.get("tags"), None, now))
        except ArticleError as exc:
            raise ArticleError(f"record {n}: {exc}") from None
    for start in range(0, len(rows), 1000):
        await conn.execute(kb_articles.insert(), rows[start:start + 1000])
    return len(rows)


async def update_article(conn: AsyncConnection, article_id: int, now: datetime, **changes: Any) -> None:
    """Change title, body, product_line and/or tags; the search text follows."""
    row = await get_article(conn, article_id)
    merged = {"title": row.title, "body": row.body, "product_line": row.product_line, "tags": row.tags}
    merged.update({k: v for k, v in changes.items() if k in merged and v is not None})
    values = article_values(merged["title"], merged["body"], merged["product_line"], merged["tags"], row.created_by, now)
    values.pop("created_at")
    values.pop("created_by")
    await conn.execute(update(kb_articles).where(kb_articles.c.id == article_id).values(**values))


async def get_article(conn: AsyncConnection, article_id: int) -> Any:
    row = (await conn.execute(select(kb_articles).where(kb_articles.c.id == article_id))).first()
    if row is None:
        raise ArticleError(f"no article {article_id}")
    return row


async def _match(conn: AsyncConnection, terms: Sequence[str], any_term: bool, product_line: str | None,
                 limit: int) -> list[Any]:
    a = kb_articles
    where_pl = []
    if product_line is not None:
        where_pl = [or_(a.c.product_line == product_line, a.c.product_line.is_(None))]
    if conn.dialect.name == "postgresql":
        expr = (" | " if any_term else " & ").join(f"'{t}'" for t in terms)
        simple = literal_column("'simple'")
        vector = func.to_tsvector(simple, a.c.search_text)  # the expression of the GIN index
        tsq = func.to_tsquery(simple, expr)
        rank = func.ts_rank(vector, tsq)
        q = (select(a, rank.label("rank")).where(vector.op("@@")(tsq), *where_pl)
             .order_by(rank.desc(), a.c.id).limit(limit))
    else:
        expr = (" OR " if any_term else " ").join(f'"{t}"' for t in terms)
        q = (select(a, literal(0).label("rank"))
             .select_from(a.join(text("kb_articles_fts"), text("kb_articles_fts.rowid = kb_articles.id")))
             .where(text("kb_articles_fts MATCH :fts").bindparams(fts=expr), *where_pl)
             .order_by(text("bm25(kb_articles_fts)"), a.c.id).limit(limit))
    return list((await conn.execute(q)).all())


async def search(conn: AsyncConnection, query: str, *, product_line: str | None = None,
                 limit: int = 10) -> list[dict[str, Any]]:
    """Articles matching ``query`` (Chinese, English or mixed), best first; ``product_line`` adds general ones."""
    terms = query_terms(query)
    if not terms:
        return []
    limit = max(1, min(limit, 100))
    rows = await _match(conn, terms, False, product_line, limit)
    if not rows and len(terms) > 1:
        rows = await _match(conn, terms, True, product_line, limit)
    return [article_dict(r, full=False) for r in rows]


async def suggest(conn: AsyncConnection, product_lines: Sequence[str], ivr_choice: str | None,
                  limit: int = 5) -> list[dict[str, Any]]:
    """Articles for the screen-pop: of the customer's product lines (and general ones), those tagged
    ``ivr:<choice>`` for the caller's IVR choice first, then product-specific before general, newest first."""
    a = kb_articles
    lines = [p for p in product_lines if p]
    scope = [a.c.product_line.is_(None)]
    if lines:
        scope.append(a.c.product_line.in_(lines))
    tagged = (literal(" ") + a.c.tags + literal(" ")).like(f"% ivr:{(ivr_choice or '').strip()} %") \
        if ivr_choice and ivr_choice.strip().isalnum() else literal(False)
    q = (select(a).where(or_(*scope))
         .order_by(case((tagged, 0), else_=1), case((a.c.product_line.is_(None), 1), else_=0),
                   a.c.updated_at.desc(), a.c.id.desc())
         .limit(max(1, min(limit, 50))))
    return [article_dict(r, full=False) for r in (await conn.execute(q)).all()]
