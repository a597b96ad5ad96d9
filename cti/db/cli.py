"""``cti db``: database set-up."""

from __future__ import annotations

import click

from cti.cli import pass_ctx, run, Context
from cti.db.engine import create_engine
from cti.db.schema import init_schema


@click.group()
def db() -> None:
    """Database set-up."""


@db.command("init")
@pass_ctx
def db_init(ctx: Context) -> None:
    """Create the cti tables (schema.sql) in database.url; harmless when they exist."""

    async def _init() -> bool:
        engine = create_engine(ctx.settings.database.url)
        try:
            return await init_schema(engine)
        finally:
            await engine.dispose()

    created = run(_init())
    click.echo("schema created" if created else "schema already present")


#: differing numbers `cti db check` lists at most
DRIFT_SHOWN = 20


@db.command("check")
@click.option("--repair", is_flag=True, help="recompute caller_facts from the tables when they differ")
@pass_ctx
def db_check(ctx: Context, repair: bool) -> None:
    """Compare caller_facts (the FastAGI lookup's table, kept by triggers) with the tables.

    Exit status 1 when they differ and --repair was not given.
    """
    from cti.customers import facts

    async def _check() -> tuple[list, int | None]:
        engine = create_engine(ctx.settings.database.url)
        try:
            async with engine.connect() as conn:
                found = await facts.drift(conn, DRIFT_SHOWN)
            if not found or not repair:
                return found, None
            async with engine.begin() as conn:
                return found, await facts.rebuild(conn)
        finally:
            await engine.dispose()

    found, rebuilt = run(_check())
    if not found:
        click.echo("caller_facts: consistent with customers, phones, products and tickets")
        return
    for e164, stored, expected in found:
        if stored is None or expected is None:
            what = "missing" if stored is None else "a number no customer has"
        else:
            what = "columns " + ", ".join(c for c, a, b in zip(facts.COLUMNS, stored, expected) if a != b)
        click.echo(f"caller_facts differs for {e164}: {what}", err=True)
    if rebuilt is None:
        many = "at least " if len(found) >= DRIFT_SHOWN else ""
        click.echo(f"{many}{len(found)} number(s) differ; run `cti db check --repair`", err=True)
        raise SystemExit(1)
    click.echo(f"caller_facts rebuilt: {rebuilt} number(s)")
