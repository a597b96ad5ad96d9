"""``cti ami status`` / ``cti ami watch``: look at the PBX the way the daemon sees it."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import click

from cti.cli import Context, pass_ctx, run


@click.group()
def ami() -> None:
    """AMI: live calls, agents and queues as cti sees them."""


async def _connect(ctx: Context):
    from cti.ami.service import AmiService
    from cti.bus import InMemoryBus
    from cti.logs import configure_logging

    configure_logging(ctx.settings.log.level, ctx.settings.log.format)  # logs on stderr, data on stdout
    bus = InMemoryBus()
    svc = AmiService(ctx.settings.ami, bus)  # no database: read-only look
    await svc.start()
    try:
        await svc.wait_ready(timeout=15)
    except asyncio.TimeoutError:
        await svc.stop()
        raise click.ClickException(
            f"no AMI connection to {ctx.settings.ami.host}:{ctx.settings.ami.port} (ami.host / ami.port)") from None
    return svc, bus


@ami.command()
@pass_ctx
def status(ctx: Context) -> None:
    """Connect, resync, print the live state as JSON, exit."""
    from cti.ami.link import AmiAuthError, AmiVersionError

    async def go() -> None:
        try:
            svc, _ = await _connect(ctx)
        except (AmiAuthError, AmiVersionError) as exc:
            raise click.ClickException(str(exc)) from None
        try:
            click.echo(json.dumps(svc.state.snapshot(time.time()), ensure_ascii=False, indent=2))
        finally:
            await svc.stop()

    run(go())


@ami.command()
@click.option("--topic", "topics", multiple=True, help="Topic prefix to show (repeatable); default: all.")
@pass_ctx
def watch(ctx: Context, topics: tuple[str, ...]) -> None:
    """Print every bus message (call.*, agent.*, queue.*, ami.*) as a JSON line until Ctrl-C."""
    from cti.ami.link import AmiAuthError, AmiVersionError

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            svc, bus = await _connect(ctx)
        except (AmiAuthError, AmiVersionError) as exc:
            raise click.ClickException(str(exc)) from None
        sub = bus.subscribe(*topics, maxsize=10_000)

        async def show() -> None:
            async for m in sub:
                click.echo(json.dumps({"topic": m.topic, **m.payload}, ensure_ascii=False, default=str))

        task = asyncio.create_task(show())
        try:
            await stop.wait()
        finally:
            task.cancel()
            await svc.stop()

    run(go())
