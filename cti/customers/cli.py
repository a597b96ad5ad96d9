"""``cti customers``: import, add, update and show customer records."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from cti.cli import Context, pass_ctx, run
from cti.customers.callerid import normalize
from cti.customers.importer import ImportFailed, count_rows, import_customers
from cti.customers.records import InvalidRecord, customer_from_fields, display_name
from cti.customers.repository import NameChange, add_customer, find_customer_id, get_customer, update_customer
from cti.db.engine import create_engine
from cti.db.schema import init_schema

MAX_SHOWN_ERRORS = 50


@click.group()
def customers() -> None:
    """Customer records: import, add, update, show."""


@customers.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-bad", is_flag=True, help="Import the good rows and report the bad ones (default: refuse the whole file).")
@click.option("--workers", type=int, default=None, help="Validation processes (default: 2 for big files).")
@click.option("--encoding", default=None, help="The file's text encoding (default: UTF-8, or GB18030/GBK when detected).")
@click.option("--no-greetings", is_flag=True, help="Do not synthesize greetings now (the daemon's backlog sweeper will).")
@pass_ctx
def import_cmd(ctx: Context, csv_file: Path, skip_bad: bool, workers: int | None, encoding: str | None,
               no_greetings: bool) -> None:
    """Import customers from CSV_FILE (upsert by phone; see README for the columns)."""
    settings = ctx.settings
    total = count_rows(csv_file)

    async def _import() -> Any:
        engine = create_engine(settings.database.url)
        try:
            await init_schema(engine)
            with click.progressbar(length=total, label="importing", file=sys.stderr, show_pos=True) as bar:
                return await import_customers(
                    engine, csv_file, settings.phone.default_region, skip_bad=skip_bad, progress=bar.update, workers=workers,
                    encoding=encoding,
                )
        finally:
            await engine.dispose()

    try:
        report = run(_import())
    except ImportFailed as exc:
        _print_errors(exc.report.errors)
        raise click.ClickException(f"import refused, the database is unchanged: {exc}") from None
    _print_errors(report.errors)
    click.echo(
        f"imported {report.imported} of {report.rows} row(s): {report.created} customer(s) created, "
        f"{report.updated} updated"
        + (f", {len(report.errors)} bad row(s) skipped" if report.errors else "")
        + (f" (read as {report.encoding})" if report.encoding != "utf-8-sig" else "")
    )
    if not no_greetings:
        _synthesize_backlog(ctx)


def _print_errors(errors: list[tuple[int, str]]) -> None:
    for line, reason in errors[:MAX_SHOWN_ERRORS]:
        click.echo(f"line {line}: {reason}", err=True)
    if len(errors) > MAX_SHOWN_ERRORS:
        click.echo(f"... and {len(errors) - MAX_SHOWN_ERRORS} more bad row(s)", err=True)


def _fields_option(f: Any) -> Any:
    for name, help_ in reversed(
        [
            ("--phones", "Phone number(s), separated by ';'."),
            ("--family-name", "Family name (王 / Smith)."),
            ("--given-name", "Given name."),
            ("--title", "先生 / 女士 / Mr / Ms / Dr."),
            ("--language", "zh or en."),
            ("--vip", "yes or no."),
            ("--dealer", "Dealer code."),
            ("--email", "E-mail address."),
            ("--products", "line:model[:YYYY-MM-DD[:serial]] entries separated by ';'."),
        ]
    ):
        f = click.option(name, default=None, help=help_)(f)
    return f


def _record(ctx: Context, values: dict[str, Any]) -> Any:
    try:
        return customer_from_fields({k: v for k, v in values.items()}, ctx.settings.phone.default_region)
    except InvalidRecord as exc:
        raise click.BadParameter(str(exc)) from None


@customers.command("add")
@_fields_option
@pass_ctx
def add_cmd(ctx: Context, **values: Any) -> None:
    """Add one customer."""
    record = _record(ctx, values)

    async def _add() -> int:
        engine = create_engine(ctx.settings.database.url)
        try:
            await init_schema(engine)
            async with engine.begin() as conn:
                return await add_customer(conn, record)
        finally:
            await engine.dispose()

    try:
        customer_id = run(_add())
    except InvalidRecord as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"customer {customer_id} added")
    _synthesize_one(ctx, NameChange(customer_id, record.family_name, record.given_name, record.title, record.language))


@customers.command("update")
@click.argument("customer_id", type=int)
@_fields_option
@pass_ctx
def update_cmd(ctx: Context, customer_id: int, **values: Any) -> None:
    """Update a customer: given options replace the stored values."""

    async def _update() -> NameChange | None:
        engine = create_engine(ctx.settings.database.url)
        try:
            async with engine.begin() as conn:
                current = await get_customer(conn, customer_id, recent_calls=0)
                if current is None:
                    raise InvalidRecord(f"no customer {customer_id}")
                merged = {
                    "phones": ";".join(p["e164"] for p in current["phones"]),
                    "family_name": current["family_name"],
                    "given_name": current["given_name"],
                    "title": current["title"],
                    "language": current["language"],
                    "vip": "yes" if current["vip"] else "no",
                    "dealer": current["dealer"],
                    "email": current["email"],
                }
                merged.update({k: v for k, v in values.items() if v is not None})
                return await update_customer(conn, customer_id, _record(ctx, merged))
        finally:
            await engine.dispose()

    try:
        change = run(_update())
    except InvalidRecord as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"customer {customer_id} updated")
    if change:
        _synthesize_one(ctx, change)


@customers.command("show")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def show_cmd(ctx: Context, key: str, as_json: bool) -> None:
    """Show a customer by id or by any spelling of one of their phone numbers."""

    async def _show() -> dict[str, Any] | None:
        engine = create_engine(ctx.settings.database.url)
        try:
            async with engine.connect() as conn:
                customer_id: int | None = None
                number = normalize(key, ctx.settings.phone.default_region)
                if number.known:
                    customer_id = await find_customer_id(conn, number.e164 or "")
                if customer_id is None and key.isdigit() and len(key) <= 12:
                    customer_id = int(key)
                return await get_customer(conn, customer_id) if customer_id is not None else None
        finally:
            await engine.dispose()

    customer = run(_show())
    if customer is None:
        raise click.ClickException(f"no customer for {key!r}")
    if as_json:
        click.echo(json.dumps(customer, ensure_ascii=False, default=str, indent=2))
        return
    name = display_name(customer["family_name"], customer["given_name"], customer["language"])
    click.echo(f"#{customer['id']}  {name} {customer['title']}".rstrip() + ("  [VIP]" if customer["vip"] else ""))
    click.echo(f"  language: {customer['language']}   dealer: {customer['dealer'] or '-'}   email: {customer['email'] or '-'}")
    click.echo("  phones:   " + ", ".join(p["e164"] for p in customer["phones"]))
    for p in customer["products"]:
        click.echo(f"  product:  {p['product_line']:<10} {p['model']}  {p['purchased_on'] or ''}")
    for t in customer["open_tickets"]:
        click.echo(f"  OPEN {t['category']} #{t['id']}: {t['description'][:60]}  (SLA {t['sla_deadline']})")
    for c in customer["last_calls"]:
        click.echo(f"  call:     {c['started_at']}  {c['queue'] or '-'}  {c['outcome'] or '-'}  {c['notes'] or ''}")
    click.echo(f"  greeting: {customer['greeting'] or '(not synthesized yet: the generic greeting plays)'}")


def _synthesize_one(ctx: Context, change: NameChange) -> None:
    """Synthesize a new or renamed customer's greeting now (the CLI is not a call path)."""
    try:
        from cti.greeting.batch import synthesize_customers
    except ImportError:  # greeting support not installed in this build
        return
    run(synthesize_customers(ctx.settings, [change.customer_id]))


def _synthesize_backlog(ctx: Context) -> None:
    """Every imported customer's greeting now, with a ``greetings`` progress bar; failures are reported."""
    try:
        from cti.greeting.batch import build_backlog
        from cti.greeting.progress import GreetingsBar, echo_report
    except ImportError:
        return
    bar = GreetingsBar()
    try:
        report = run(build_backlog(ctx.settings, progress=bar))
    finally:
        bar.close()
    echo_report(report)
