"""``cti serve``: run the daemon until Ctrl-C / SIGTERM."""

from __future__ import annotations

import asyncio
import signal

import click

from cti.cli import Context, pass_ctx


@click.command()
@pass_ctx
def serve(ctx: Context) -> None:
    """Run the CTI daemon: FastAGI, AMI, HTTP/websocket."""
    from cti.app import Daemon
    from cti.logs import configure_logging

    settings = ctx.settings
    configure_logging(settings.log.level, settings.log.format)

    async def _main() -> None:
        daemon = Daemon(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await daemon.start()
        click.echo(daemon.banner(), err=True)
        try:
            await stop.wait()
        finally:
            await daemon.stop()

    from cti.ami.link import AmiAuthError, AmiVersionError

    try:
        asyncio.run(_main())
    except (OSError, AmiAuthError, AmiVersionError) as exc:  # a refused AMI login or PBX: one line, no traceback
        raise click.ClickException(str(exc)) from None
