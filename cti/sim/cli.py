"""``cti sim``: run the simulated Asterisk in the foreground until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace
from typing import Optional

import click

from cti.sim.config import AmiUser, SimConfig, default_users, parse_classes


#: Read classes of the AMI account taken from the cti config (no ``dialplan``: see DESIGN.md).
CTI_READ = "system,call,agent,user,reporting,cdr"


def _settings():  # -> cti.config.Settings | None
    """The cti settings if a ``cti`` group context is around and the config loads, else None."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    if obj is None or not hasattr(obj, "settings"):
        return None
    try:
        return obj.settings
    except click.ClickException as exc:
        click.echo(f"cti sim: ignoring the cti config ({exc.message})", err=True)
        return None


def _users(specs: tuple[str, ...]) -> dict[str, AmiUser]:
    users: dict[str, AmiUser] = {}
    for spec in specs:
        parts = spec.split(":")
        if len(parts) < 2 or not parts[0]:
            raise click.BadParameter(f"{spec!r}: expected NAME:SECRET[:READ_CLASSES]", param_hint="--ami-user")
        read = parse_classes(parts[2]) if len(parts) > 2 and parts[2] else parse_classes("all")
        users[parts[0]] = AmiUser(parts[1], read=read, write=parse_classes("all"))
    return users


async def run_sim(config: SimConfig) -> None:
    """Start the PBX, wait for SIGINT/SIGTERM, stop it cleanly."""
    from cti.sim.pbx import SimPbx

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            pass
    pbx = SimPbx(config)
    await pbx.start()
    click.echo(f"cti sim: AMI on {config.ami_host}:{pbx.ami_port} (users: {', '.join(config.users)}), "
               f"FastAGI target {config.agi_host}:{config.agi_port}, {config.calls_per_day:g} calls/day "
               f"at x{config.speed:g}. Ctrl-C stops.")
    try:
        await stop.wait()
    finally:
        await pbx.stop()
        click.echo(f"cti sim: stopped after {pbx.processed_calls} calls.")


@click.command("sim")
@click.option("--ami-host", default="127.0.0.1", show_default=True, help="AMI listen address.")
@click.option("--ami-port", default=5038, show_default=True, type=int, help="AMI port (0: any free port).")
@click.option("--ami-user", "ami_users", multiple=True, metavar="NAME:SECRET[:READ]",
              help="Extra AMI user (read classes comma-separated, default all). Built in: cti/cti-secret, "
                   "cti-min/cti-min-secret (no dialplan class).")
@click.option("--agi-host", default=None, help="cti's FastAGI host [default: agi.host of the cti config, 127.0.0.1].")
@click.option("--agi-port", default=None, type=int, help="cti's FastAGI port [default: agi.port, 4573].")
@click.option("--calls-per-day", default=2000.0, show_default=True, type=float, help="Traffic volume (0: none).")
@click.option("--speed", default=60.0, show_default=True, type=float, help="Simulated seconds per real second.")
@click.option("--seed", default=None, type=int, help="Random seed (same seed, same day).")
@click.option("--start", "start_hhmm", default="08:00", show_default=True, help="Simulated time of day to start at.")
@click.option("--agents-file", type=click.Path(exists=True, dir_okay=False), help="TOML of [[queue]] and [[agent]].")
@click.option("--callers-file", type=click.Path(exists=True, dir_okay=False),
              help="CSV of known callers: number,name.")
@click.option("--unknown-share", default=0.4, show_default=True, type=float, help="Share of unknown callers.")
@click.option("--trunk", default="PJSIP/trunk", show_default=True,
              help="Caller channel prefix (Local/8005551234@from-pstn names them like the captures).")
def sim(ami_host: str, ami_port: int, ami_users: tuple[str, ...], agi_host: Optional[str], agi_port: Optional[int],
        calls_per_day: float, speed: float, seed: Optional[int], start_hhmm: str, agents_file: Optional[str],
        callers_file: Optional[str], unknown_share: float, trunk: str) -> None:
    """Run a simulated Asterisk (AMI server + FastAGI caller) for cti, in the foreground."""
    from cti.sim.traffic import load_callers, start_of_day

    if speed <= 0:
        raise click.BadParameter("must be > 0", param_hint="--speed")
    try:
        start_epoch = start_of_day(start_hhmm)
    except ValueError:
        raise click.BadParameter(f"{start_hhmm!r} is not HH:MM", param_hint="--start") from None
    from cti.logs import configure_logging

    users = default_users()
    settings = _settings()
    if settings is not None:
        configure_logging(settings.log.level, settings.log.format)  # logs on stderr
    else:
        configure_logging()
    if settings is not None:
        agi_host = agi_host or settings.agi.host
        agi_port = agi_port or settings.agi.port
        name, secret = settings.ami.username, settings.ami.secret
        if secret and name in users:  # the daemon's account: its secret, the built-in classes
            users[name] = replace(users[name], secret=secret)
        elif secret:  # a new account, with the least privilege cti should have
            users[name] = AmiUser(secret, read=parse_classes(CTI_READ), write=parse_classes("all"))
    users.update(_users(ami_users))
    config = SimConfig(ami_host=ami_host, ami_port=ami_port, users=users, agi_host=agi_host or "127.0.0.1",
                       agi_port=agi_port or 4573, calls_per_day=calls_per_day, speed=speed, seed=seed,
                       start_epoch=start_epoch, unknown_share=unknown_share, trunk=trunk)
    if agents_file:
        try:
            config = config.with_agents_file(agents_file)
        except (KeyError, ValueError) as exc:
            raise click.ClickException(f"{agents_file}: {exc}") from None
    if callers_file:
        config = replace(config, known_callers=tuple(load_callers(callers_file)))
    try:
        asyncio.run(run_sim(config))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {ami_host}:{ami_port}: {exc}") from None
