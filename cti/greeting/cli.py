"""``cti greetings``: build the greeting sounds, preview and speak texts."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cti.cli import Context, pass_ctx, run
from cti.greeting.synth import SynthesisError, synthesize


@click.group()
def greetings() -> None:
    """Greeting sounds (espeak-ng + sox, 8 kHz mono WAV for Asterisk)."""


@greetings.command("build")
@click.option("--all", "all_customers", is_flag=True, help="Also synthesize every customer greeting still missing.")
@click.option("--limit", type=int, default=None, help="With --all: examine at most this many customers.")
@pass_ctx
def build_cmd(ctx: Context, all_customers: bool, limit: int | None) -> None:
    """Build the generic greetings, IVR menu and after-hours sounds (and with --all, the customers')."""
    from cti.db.engine import create_engine, sessionmaker
    from cti.greeting.bulk import BulkReport, build_all
    from cti.greeting.progress import GreetingsBar, echo_report
    from cti.greeting.service import GreetingService

    settings = ctx.settings
    bar = GreetingsBar()

    async def _build() -> tuple[list[str], BulkReport | None]:
        engine = create_engine(settings.database.url)
        service = GreetingService(settings.greeting, sessionmaker(engine), sweep_interval=None)
        try:
            names = await service.ensure_generic()
            # the customers' in bulk, as after an import: each distinct text synthesized once
            report = await build_all(service, engine, limit=limit, progress=bar) if all_customers else None
            return names, report
        finally:
            bar.close()
            await engine.dispose()

    try:
        names, report = run(_build())
    except SynthesisError as exc:
        raise click.ClickException(str(exc)) from None
    for name in names:
        click.echo(name)
    if report is not None:
        echo_report(report)


@greetings.command("prune")
@pass_ctx
def prune_cmd(ctx: Context) -> None:
    """Delete greeting files of renamed or deleted customers (cached syntheses are kept)."""
    from cti.db.engine import create_engine, sessionmaker
    from cti.greeting.service import GreetingService

    settings = ctx.settings

    async def _prune() -> int:
        engine = create_engine(settings.database.url)
        try:
            return await GreetingService(settings.greeting, sessionmaker(engine), sweep_interval=None).prune_stale()
        finally:
            await engine.dispose()

    click.echo(f"{run(_prune())} stale greeting file(s) removed")


@greetings.command("say")
@click.argument("text")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("--voice", default=None, help="espeak-ng voice (default: greeting.voice_zh / voice_en).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="WAV file to write.")
@pass_ctx
def say_cmd(ctx: Context, text: str, lang: str, voice: str | None, out: Path) -> None:
    """Speak TEXT ('-' reads standard input) into an 8 kHz mono 16-bit WAV file."""
    cfg = ctx.settings.greeting
    if text == "-":
        text = sys.stdin.read()
    voice = voice or (cfg.voice_en if lang == "en" else cfg.voice_zh)
    try:
        path = run(synthesize(text, voice, out, cfg))
    except SynthesisError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(str(path))


@greetings.command("preview")
@click.option("--family-name", default="")
@click.option("--given-name", default="")
@click.option("--title", default="")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("--customer-id", type=int, default=0, show_default=True)
@pass_ctx
def preview_cmd(ctx: Context, family_name: str, given_name: str, title: str, lang: str, customer_id: int) -> None:
    """Show the text and sound name a customer's greeting would get (nothing is synthesized)."""
    from cti.greeting.service import GreetingService

    service = GreetingService(ctx.settings.greeting, None, sweep_interval=None)  # type: ignore[arg-type]
    g = service.greeting_for(customer_id, family_name, given_name, title, lang)
    click.echo(f"text:  {g.text if g.text is not None else '(generic greeting)'}")
    click.echo(f"voice: {g.voice}")
    click.echo(f"sound: {service.playback_name(g.name)}")
