"""The running demo: the cti daemon, the simulated PBX it watches, the shift and the traffic.

Order of start (and the reverse for stop):

1. the simulated PBX's AMI server (no traffic yet), so the daemon's first AMI login succeeds;
2. the daemon (FastAGI, AMI pointed at the sim, HTTP console), on the demo database;
3. the shift: every demo agent's phone is logged into its skill queue by the daemon (``QueueAdd``
   through :class:`cti.ami.service.AmiService`, exactly what the console's *Ready* button does);
   the simulated phones answer by themselves (featured agents after a few real seconds);
4. traffic: Poisson arrivals on the sim's fast clock, the demo customers as known callers.

One clock: the daemon's clock *is* the simulated PBX's (``Daemon(settings, clock=pbx.clock.now)``), so
call records, durations, the wallboard, reports, ticket deadlines and outbound calling hours all read
the simulated day, which starts at 09:00 in the call center's time zone whatever the hour of the
newcomer (a restarted demo goes on from where the last run stopped: cti/demo/simclock.py). Routing
hours stay always open.
"""

from __future__ import annotations

import asyncio
import random
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog

from cti.config import Settings, load_settings
from cti.demo.data import DemoCustomer, Roster
from cti.sim.config import AgentConfig, SimConfig, default_queues

log = structlog.get_logger(__name__)

ALWAYS_OPEN = {str(d): "00:00-23:59" for d in range(7)}
AMI_USER, AMI_SECRET = "cti", "cti-secret"


@dataclass(frozen=True)
class DemoOptions:
    data_dir: Path
    speed: float = 10.0
    calls_per_day: float = 2000.0
    seed: int | None = 1
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    ring_seconds: float = 6.0  # real seconds a featured agent's phone rings before the sim answers
    talk_seconds: float = 30.0  # real seconds a featured agent's simulated conversation lasts
    colleague_answer_s: float = 2.0  # simulated seconds
    colleague_aht_s: float = 60.0  # simulated seconds
    start_hhmm: str = "09:00"
    unknown_share: float = 0.4

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{(self.data_dir / 'cti.db').resolve()}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def demo_settings(opts: DemoOptions, *, ami_port: int, agi_port: int, base: Settings | None = None) -> Settings:
    """The daemon's settings: AMI at the sim, hours always open; without ``base``, the demo database
    and sounds in the data dir (with ``base``, its database and sounds are kept)."""
    if base is None:
        s = load_settings(None, env={}).replace("database", url=opts.database_url)
        s = s.replace("greeting", sounds_dir=str((opts.data_dir / "sounds").resolve()))
    else:
        s = base
    s = s.replace("ami", host="127.0.0.1", port=ami_port, username=AMI_USER, secret=AMI_SECRET, enabled=True,
                  reconnect_min=min(s.ami.reconnect_min, 0.2), reconnect_max=min(s.ami.reconnect_max, 5.0))
    s = s.replace("agi", host="127.0.0.1", port=agi_port)
    s = s.replace("http", host=opts.http_host, port=opts.http_port)
    # the scheduler looks for missed deadlines every few real seconds: on a fast simulated day
    s = s.replace("tickets", scan_interval_s=min(s.tickets.scan_interval_s, 5.0))
    return s.replace("routing", hours=ALWAYS_OPEN)


def demo_start_epoch(opts: DemoOptions) -> float:
    """Where this run's simulated day starts: ``start_hhmm`` today in the center's time zone, or on
    from the last run (cti/demo/simclock.py)."""
    from cti.demo.simclock import day_start, resume_epoch

    tz = load_settings(None, env={}).routing.timezone
    return resume_epoch(opts.data_dir, day_start(opts.start_hhmm, tz))


def sim_config(opts: DemoOptions, roster: Roster, people: list[DemoCustomer], *, agi_port: int,
               start_epoch: float | None = None) -> SimConfig:
    """The simulated PBX: no static members (the shift logs in with QueueAdd), the roster's phones
    with their answer delays, queues whose ring timeout outlasts a featured agent's ring."""
    featured_ring = opts.ring_seconds * opts.speed
    phones = tuple(
        AgentConfig(a.interface, a.display_name, (),
                    answer_delay=featured_ring if a.featured else opts.colleague_answer_s,
                    aht=opts.talk_seconds * opts.speed if a.featured else opts.colleague_aht_s)
        for a in roster.agents)
    queues = tuple(replace(q, timeout=max(q.timeout, featured_ring + 5 * opts.speed)) for q in default_queues())
    # callers wait long enough that a featured agent's ring (real seconds, so many simulated ones at a
    # high speed) is not mostly cut short by the caller hanging up
    patience = max(120.0, 5 * featured_ring)
    return SimConfig(ami_port=0, agi_host="127.0.0.1", agi_port=agi_port, speed=opts.speed, seed=opts.seed,
                     agents=phones, queues=queues, calls_per_day=0.0, start_epoch=start_epoch,
                     patience_mean=patience, known_callers=tuple((p.caller_number, p.caller_name) for p in people),
                     unknown_share=opts.unknown_share)


async def log_in_shift(daemon, *, timeout: float = 10.0) -> int:  # daemon: cti.app.Daemon
    """QueueAdd every active agent account with a phone into its skill queues; returns how many."""
    from cti.agents.accounts import list_agents
    from cti.ami.link import AmiActionError

    await daemon.ami.wait_ready(timeout)
    async with daemon.engine.connect() as conn:
        accounts = await list_agents(conn)
    count = 0
    for a in accounts:
        if not (a.active and a.interface and a.skills):
            continue
        for queue, penalty in a.skills.items():
            try:
                await daemon.ami.queue_add(queue, a.interface, a.display_name or a.username, penalty)
            except AmiActionError as exc:
                if "Already there" not in str(exc):
                    raise
        count += 1
    return count


class DemoRunner:
    """Start and stop the demo's parts in order (see the module docstring)."""

    def __init__(self, opts: DemoOptions, roster: Roster, people: list[DemoCustomer]) -> None:
        self.opts = opts
        self.roster = roster
        self.people = people
        self.pbx = None  # cti.sim.pbx.SimPbx
        self.daemon = None  # cti.app.Daemon
        self.settings: Settings | None = None
        self._traffic: asyncio.Task[int] | None = None

    async def start(self) -> None:
        from cti.app import Daemon
        from cti.sim.pbx import SimPbx

        agi_port = free_port()
        start_epoch = demo_start_epoch(self.opts)
        self.pbx = SimPbx(sim_config(self.opts, self.roster, self.people, agi_port=agi_port,
                                     start_epoch=start_epoch))
        await self.pbx.start()
        try:
            self.settings = demo_settings(self.opts, ami_port=self.pbx.ami_port, agi_port=agi_port)
            self.daemon = Daemon(self.settings, clock=self.pbx.clock.now)  # one clock: the simulated day
            await self.daemon.start()
            await log_in_shift(self.daemon)
            self.start_traffic()
        except BaseException:
            await self.stop()
            raise

    def start_traffic(self) -> None:
        from cti.sim.traffic import CallerPool, run_traffic

        if self.opts.calls_per_day <= 0 or self.pbx is None:
            return
        rng = random.Random(self.opts.seed)
        pool = CallerPool(self.pbx.config.known_callers, random.Random(rng.random()), self.opts.unknown_share)
        self._traffic = asyncio.create_task(
            run_traffic(self.pbx, self.opts.calls_per_day, pool, rng=random.Random(rng.random()),
                        tz=ZoneInfo(self.settings.routing.timezone) if self.settings else None), name="demo-traffic")

    async def stop(self) -> None:
        if self._traffic is not None:
            self._traffic.cancel()
            await asyncio.gather(self._traffic, return_exceptions=True)
            self._traffic = None
        if self.daemon is not None:
            await self.daemon.stop()
            self.daemon = None
        if self.pbx is not None:
            from cti.demo.simclock import save_epoch

            save_epoch(self.opts.data_dir, self.pbx.clock.now())
            await self.pbx.stop()
            self.pbx = None

    @property
    def console_url(self) -> str:
        assert self.daemon is not None and self.daemon.web is not None
        host = self.opts.http_host if self.opts.http_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{self.daemon.web.port}/"
