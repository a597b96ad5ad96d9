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
