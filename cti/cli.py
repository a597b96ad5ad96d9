"""The ``cti`` command. Each feature package contributes its own click commands, registered below."""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Coroutine

import click

from cti.config import ConfigError, Settings, load_settings


class Context:
    """What every subcommand needs: the settings (loaded lazily so ``--help`` never fails)."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_path)
            except ConfigError as exc:
                raise click.ClickException(f"configuration error: {exc}") from None
        return self._settings


pass_ctx = click.make_pass_decorator(Context)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion for a CLI command; a database that cannot be reached or
    has no cti schema is a one-line error (exit status 1), not a traceback."""
    from sqlalchemy.exc import DBAPIError

    try:
        return asyncio.run(coro)
    except (DBAPIError, ConnectionError) as exc:  # ConnectionError: asyncpg's connect, unwrapped
        raise click.ClickException(_database_hint(exc)) from None


def _database_hint(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    return (f"database error: {first}\n"
            "Check database.url (CTI_DATABASE_URL) and that the schema is there: `cti db init` creates or upgrades it.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="CTI_CONFIG", type=click.Path(dir_okay=False), help="cti.toml (or $CTI_CONFIG).")
@click.version_option(package_name="cti")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """cti: caller recognition, routing and screen-pops for Asterisk call centers."""
    ctx.obj = Context(config_path)


def _register() -> None:
    # One line per feature package; each module defines click commands/groups.
    from cti.db.cli import db
    from cti.customers.cli import customers
    from cti.serve import serve
    from cti.sim.cli import sim
    from cti.greeting.cli import greetings
    from cti.stats.cli import reports, staffing
    from cti.agents.cli import agents
    from cti.dialplan.cli import dialplan
    from cti.ami.cli import ami
    from cti.tickets.cli import org, tickets
    from cti.kb.cli import kb
    from cti.demo.cli import demo
    from cti.outbound.cli import outbound

    main.add_command(db)
    main.add_command(customers)
    main.add_command(serve)
    main.add_command(sim)
    main.add_command(greetings)
    main.add_command(staffing)
    main.add_command(reports)
    main.add_command(agents)
    main.add_command(dialplan)
    main.add_command(ami)
    main.add_command(tickets)
    main.add_command(org)
    main.add_command(kb)
    main.add_command(demo)
    main.add_command(outbound)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
