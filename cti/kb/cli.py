"""``cti kb``: add, search and import knowledge-base articles."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterator

import click

from cti.cli import Context, pass_ctx
from cti.tickets.cli import domain, with_db


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Articles from .json (a list), .jsonl (one object a line) or .csv (title,body,product_line,tags)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as f:
            yield from csv.DictReader(f)
    elif suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError as exc:
                        raise click.ClickException(f"{path}:{n}: not JSON ({exc})") from None
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise click.ClickException(f"{path}: not JSON ({exc})") from None
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            raise click.ClickException(f"{path}: expected a JSON list of objects")
        yield from data
    else:
        raise click.ClickException(f"{path}: expected .csv, .json or .jsonl")


@click.group()
def kb() -> None:
    """Knowledge base: add, search, import articles."""


@kb.command("add")
@click.option("--title", required=True)
@click.option("--body", default=None, help="Article text (or --body-file).")
@click.option("--body-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--product-line", type=click.Choice(["appliances", "mobile", "office"]), default=None)
@click.option("--tags", default="", help="Space- or comma-separated; 'ivr:3' ties it to IVR choice 3.")
@pass_ctx
def add_cmd(ctx: Context, title: str, body: str | None, body_file: Path | None, product_line: str | None,
            tags: str) -> None:
    """Add one article."""
    from cti.kb.articles import add_article
    from cti.tickets.sla import system_clock

    if body_file is not None:
        body = body_file.read_text(encoding="utf-8")
    if not body:
        raise click.UsageError("give --body or --body-file")

    async def work(sm: Any) -> int:
        async with sm() as s, s.begin():
            return await add_article(await s.connection(), title=title, body=body, product_line=product_line,
                                     tags=tags, now=system_clock())

    click.echo(f"article #{domain(lambda: with_db(ctx, work))} added")


@kb.command("search")
@click.argument("query")
@click.option("--product-line", type=click.Choice(["appliances", "mobile", "office"]), default=None)
@click.option("--limit", type=int, default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def search_cmd(ctx: Context, query: str, product_line: str | None, limit: int, as_json: bool) -> None:
    """Full-text search (Chinese and English)."""
    from cti.kb.articles import search

    async def work(sm: Any) -> Any:
        async with sm() as s:
            return await search(await s.connection(), query, product_line=product_line, limit=limit)

    found = with_db(ctx, work)
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2))
        return
    for a in found:
        click.echo(f"#{a['id']:<5} [{a['product_line'] or 'all'}] {a['title']}\n       {a['snippet'][:100]}")
    click.echo(f"{len(found)} article(s)", err=True)


@kb.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_ctx
def import_cmd(ctx: Context, file: Path) -> None:
    """Import articles from FILE (.csv with title,body,product_line,tags; .json; .jsonl); all or nothing."""
    from cti.kb.articles import import_articles
    from cti.tickets.sla import system_clock

    records = list(read_records(file))

    async def work(sm: Any) -> int:
        async with sm() as s, s.begin():
            return await import_articles(await s.connection(), records, system_clock())

    click.echo(f"imported {domain(lambda: with_db(ctx, work))} article(s)")
