"""``cti demo``: demo data, greetings, the daemon and a simulated PBX placing calls, in one command."""

from __future__ import annotations

import asyncio
import csv
import shutil
import signal
import time
from datetime import datetime, timezone
from pathlib import Path

import click
import structlog

from cti.demo.data import ADMIN_PASSWORD, AGENT_PASSWORD, SUPERVISOR_PASSWORD, DemoCustomer, Roster, demo_customers, roster
from cti.demo.org import ORG
from cti.demo.seed import ESCALATES_AFTER_S
from cti.demo.world import DemoOptions, DemoRunner, demo_settings, demo_start_epoch


def _say(text: str = "") -> None:
    click.echo(text, err=False)


def write_callers(path: Path, people: list[DemoCustomer]) -> None:
    """The known callers as ``number,name`` (``cti sim --callers-file`` reads it too)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["number", "name"])
        for p in people:
            w.writerow([p.caller_number, p.caller_name])


def tts_missing(espeak: str, sox: str) -> list[str]:
    return [tool for tool in (espeak, sox) if shutil.which(tool) is None]


#: Logged on every synthesis attempt when the tools are missing: said once by the demo instead.
_TTS_FAILURES = frozenset({"greeting_synthesis_failed", "greeting_generic_failed", "greeting_sweep_aborted",
                           "greeting_sweep_failed"})


def _drop_tts_failures(_logger: object, _name: str, event: dict) -> dict:
    if event.get("event") in _TTS_FAILURES:
        raise structlog.DropEvent
    return event


def quiet_tts_failures() -> None:
    """Drop the per-customer synthesis failures from the logs (the demo printed one clear warning)."""
    processors = list(structlog.get_config()["processors"])
    if _drop_tts_failures not in processors:
        structlog.configure(processors=[_drop_tts_failures, *processors])


async def prepare(opts: DemoOptions, people: list[DemoCustomer], team: Roster) -> None:
    """Database (created once, reused), callers file, greetings."""
    from cti.db.engine import create_engine
    from cti.db.schema import init_schema
    from cti.demo.seed import seed_world
    from cti.greeting.batch import synthesize_backlog

    opts.data_dir.mkdir(parents=True, exist_ok=True)
    settings = demo_settings(opts, ami_port=0, agi_port=0)
    engine = create_engine(settings.database.url)
    try:
        await init_schema(engine)
        seeded = await seed_world(engine, people, team, region=settings.phone.default_region,
                                  now=datetime.fromtimestamp(demo_start_epoch(opts), timezone.utc),
                                  policy=settings.tickets.policy())
    finally:
        await engine.dispose()
    if seeded.created:
        _say(f"demo database: {opts.data_dir / 'cti.db'}: {seeded.customers} customers, "
             f"{seeded.complaints} open complaints, {seeded.accounts} accounts")
    else:
        _say(f"demo database: {opts.data_dir / 'cti.db'} (existing, {seeded.customers} customers; --reset starts over)")
    write_callers(opts.data_dir / "callers.csv", people)
    missing = tts_missing(settings.greeting.espeak, settings.greeting.sox)
    if missing:
        _say(f"WARNING: {' and '.join(missing)} not found: no personalized greetings, callers hear the generic "
             f"one (and only if Asterisk has it). Install: apt-get install -y espeak-ng sox")
        quiet_tts_failures()
        return
    started = time.monotonic()
    built = await synthesize_backlog(settings)
    _say(f"greetings: {built} synthesized in {time.monotonic() - started:.1f} s into {opts.data_dir / 'sounds'}"
         if built else "greetings: up to date")


def banner(runner: DemoRunner) -> str:
    o, team, pbx, daemon = runner.opts, runner.roster, runner.pbx, runner.daemon
    assert pbx is not None and daemon is not None and daemon.agi is not None
    featured = [a for a in team.agents if a.featured]
    lines = [
        "",
        f"cti demo is running: simulated 800 line at x{o.speed:g} speed, " + (
            f"about {o.calls_per_day:g} calls a day, the simulated day starting at {o.start_hhmm}."
            if o.calls_per_day > 0 else "no traffic (--calls-per-day 0: drive it with bench/sim_load.py)."),
        "",
        f"  agent console:  {runner.console_url}",
        f"  agents (password {AGENT_PASSWORD}); their phones ring about {o.ring_seconds:g} s, then the call lasts "
        f"about {o.talk_seconds:g} s:",
    ]
    for a in featured:
        lines.append(f"      {a.username:<13} {a.display_name}  {a.interface}  queue {a.queue}")
    sizes = ", ".join(f"{q} {team.sizing[q] + 1}" for q in team.sizing)
    lines += [
        f"    simulated colleagues answer in about {o.colleague_answer_s:g} s ({sizes} agents in all; log in as "
        f"any of them, e.g. mobile2)",
        f"  supervisor:     {team.supervisor} / {SUPERVISOR_PASSWORD}",
        f"  complaints:     owners {', '.join(m.username for m in ORG if m.product_line)} -> managers "
        f"{', '.join(m.username for m in ORG if m.manager and not m.product_line)} -> "
        f"{ORG[0].username} (password {AGENT_PASSWORD}); a seeded complaint escalates "
        f"{ESCALATES_AFTER_S / 60:g} simulated minutes into the first day",
        f"  admin:          {team.admin} / {ADMIN_PASSWORD}",
        "",
        f"  simulated Asterisk: AMI 127.0.0.1:{pbx.ami_port} (user cti / cti-secret); it calls cti's FastAGI at "
        f"127.0.0.1:{daemon.agi.port}",
        f"  data: {o.data_dir}/ (cti.db, sounds/, callers.csv)",
        "",
        "Ctrl-C stops.",
    ]
    return "\n".join(lines)


async def run_demo(opts: DemoOptions, status_every: float = 60.0) -> None:
    team = roster(opts.calls_per_day, aht_s=opts.colleague_aht_s, answer_s=opts.colleague_answer_s)
    people = demo_customers()
    await prepare(opts, people, team)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            pass
    runner = DemoRunner(opts, team, people)
    await runner.start()
    _say(banner(runner))
    watcher = asyncio.create_task(say_escalations(runner), name="demo-escalations")
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), status_every)
            except asyncio.TimeoutError:
                _say(status_line(runner))
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        _say("stopping...")
        pbx = runner.pbx
        calls = pbx.processed_calls if pbx is not None else 0
        await runner.stop()
        _say(f"cti demo stopped after {calls} simulated calls.")


def _hhmm(epoch: float, timezone_name: str) -> str:
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(epoch, ZoneInfo(timezone_name)).strftime("%H:%M")


async def escalation_line(runner: DemoRunner, payload: dict) -> str:
    """``[09:10 simulated] complaint #1 missed its deadline: escalated from X to Y`` (one line, zh + en names)."""
    from sqlalchemy import select

    from cti.db.tables import agents

    daemon = runner.daemon
    assert daemon is not None
    ids = [i for i in (payload.get("from_owner_id"), payload.get("owner_id")) if i is not None]
    async with daemon.engine.connect() as conn:
        names = {r.id: r.display_name or r.username for r in await conn.execute(
            select(agents.c.id, agents.c.username, agents.c.display_name).where(agents.c.id.in_(ids)))}
    when = _hhmm(float(payload.get("at") or daemon.clock()), daemon.settings.routing.timezone)
    return (f"[{when} simulated] ticket #{payload.get('ticket_id')} missed its deadline: escalated from "
            f"{names.get(payload.get('from_owner_id'), '-')} to {names.get(payload.get('owner_id'), '-')}")


async def say_escalations(runner: DemoRunner) -> None:
    """Print each ticket escalation as it happens (on the simulated clock)."""
    from cti.tickets.topics import TICKET_ESCALATED

    assert runner.daemon is not None
    sub = runner.daemon.bus.subscribe(TICKET_ESCALATED)
    try:
        async for msg in sub:
            _say(await escalation_line(runner, msg.payload))
    finally:
        sub.close()


def status_line(runner: DemoRunner) -> str:
    pbx, daemon = runner.pbx, runner.daemon
    if pbx is None or daemon is None:
        return ""
    snap = daemon.ami.state.snapshot(daemon.clock())
    waiting = sum(q.get("waiting_count", 0) for q in snap["queues"])
    sim_time = _hhmm(pbx.clock.now(), daemon.settings.routing.timezone)
    return (f"[{sim_time} simulated] {pbx.processed_calls} calls done, {len(snap['calls'])} live, {waiting} waiting; "
            f"AMI {'up' if daemon.ami.connected else 'DOWN'}")


@click.command("demo")
@click.option("--speed", default=10.0, show_default=True, type=float, help="Simulated seconds per real second.")
@click.option("--calls-per-day", default=2000.0, show_default=True, type=float,
              help="Traffic of the simulated 800 line (0: no traffic).")
@click.option("--seed", default=1, show_default=True, type=int, help="Random seed of the traffic.")
@click.option("--http-host", default="127.0.0.1", show_default=True, help="Console address (0.0.0.0: every interface).")
@click.option("--http-port", default=8080, show_default=True, type=int, help="Console port (0: any free port).")
@click.option("--data-dir", default="./cti-demo", show_default=True, type=click.Path(file_okay=False),
              help="Where the demo database, sounds and callers file live.")
@click.option("--ring-seconds", default=6.0, show_default=True, type=float,
              help="Real seconds the featured agents' phones ring before answering.")
@click.option("--talk-seconds", default=30.0, show_default=True, type=float,
              help="Real seconds a featured agent's call lasts.")
@click.option("--reset", is_flag=True, help="Delete the data dir's database and sounds first.")
@click.option("-v", "--verbose", is_flag=True, help="Log every call (structlog, on stderr).")
def demo(speed: float, calls_per_day: float, seed: int, http_host: str, http_port: int, data_dir: str,
         ring_seconds: float, talk_seconds: float, reset: bool, verbose: bool) -> None:
    """Run cti with demo data against a simulated Asterisk: open the console URL it prints, log in, watch pops."""
    from cti.logs import configure_logging

    if speed <= 0:
        raise click.BadParameter("must be > 0", param_hint="--speed")
    if calls_per_day < 0:
        raise click.BadParameter("must be >= 0", param_hint="--calls-per-day")
    configure_logging("info" if verbose else "warning", "auto")
    path = Path(data_dir)
    if reset:
        (path / "cti.db").unlink(missing_ok=True)
        (path / "sim-clock").unlink(missing_ok=True)
        shutil.rmtree(path / "sounds", ignore_errors=True)
    opts = DemoOptions(path, speed=speed, calls_per_day=calls_per_day, seed=seed, http_host=http_host,
                       http_port=http_port, ring_seconds=ring_seconds, talk_seconds=talk_seconds)
    try:
        asyncio.run(run_demo(opts))
    except OSError as exc:
        raise click.ClickException(f"{exc} (is another cti already using port {http_port}? try --http-port 0)") from None
