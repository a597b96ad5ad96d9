"""The composition root: builds every part of the daemon from the settings, starts and stops them in order.

No other module creates an engine, a bus, a server or a global; they receive what they need here.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

import structlog

from cti.agi.decisions import DecisionLedger
from cti.agi.origin import AGI_PEER, AgiOrigins
from cti.agi.peers import PeerFilter
from cti.agi.server import AgiServer
from cti.ami.service import AmiService
from cti.bus import EventBus, create_bus
from cti.cluster.identity import make_node_id
from cti.config import Settings, ami_endpoints
from cti.exposure import check_exposure
from cti.fdlimit import raise_nofile_limit
from cti.customers.lookup import CallerLookup, open_lookup
from cti.db.engine import create_engine, sessionmaker
from cti.db.schema import init_schema
from cti.greeting.service import GreetingService
from cti.heap import freeze_startup_heap, thaw
from cti.outbound.scheduler import OutboundScheduler
from cti.outbound.service import OutboundService
from cti.routing.inbound import Decision, InboundRoutes
from cti.routing.rules import RoutingRules
from cti.routing.store import active_rules
from cti.tickets.config import build_scheduler

log = structlog.get_logger(__name__)


class Daemon:
    """cti serve: FastAGI + AMI + greeting synthesis (+ HTTP/websocket when configured)."""

    def __init__(self, settings: Settings, *, bus: EventBus | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        #: epoch seconds of "now" for every record, board and deadline (``cti demo``: its simulated day)
        self.clock = clock
        self.engine = create_engine(settings.database.url, settings.database.echo)
        self.sessionmaker = sessionmaker(self.engine)
        self.node_id = make_node_id(settings.cluster.node_id)
        self.bus: EventBus = bus or create_bus(settings.bus, self.node_id, resume=bool(settings.cluster.node_id))
        self.greetings = GreetingService(settings.greeting, self.sessionmaker)
        self.ami = AmiService(ami_endpoints(settings)[0], self.bus, self.sessionmaker, clock=clock)
        self.tickets = build_scheduler(settings.tickets, self.sessionmaker, self.bus, clock=clock)
        #: outbound follow-ups: ONE service (its dials and their call.originate_result must meet), used by
        #: the web routes; its scheduler consumes the bus (results, ticket/wrap-up/outbound events)
        ob = settings.outbound.build()
        self.outbound = OutboundService(self.sessionmaker, self.ami, self.bus, policy=ob.policy, rules=ob.rules,
                                        credits=ob.credits, context=ob.context,
                                        originate_timeout_ms=ob.originate_timeout_ms, clock=clock)
        self.outbound_scheduler = OutboundScheduler(self.outbound, self.bus, interval=ob.sweep_interval_s)
        #: several nodes (bus on Redis) or several Asterisks: AMI consumers and the ticket
        #: scheduler run under leases (cti/cluster/runtime.py) instead of directly below
        self.cluster: Any = None
        if settings.bus.url != "memory://" or len(ami_endpoints(settings)) > 1:
            from cti.cluster.runtime import ClusterRuntime

            self.cluster = ClusterRuntime(
                settings, self.node_id, lambda cfg: AmiService(cfg, self.bus, self.sessionmaker, clock=clock),
                lambda: build_scheduler(settings.tickets, self.sessionmaker, self.bus, clock=clock), bus=self.bus)
        self.lookup: CallerLookup | None = None
        self.routes: InboundRoutes | None = None
        self.agi: AgiServer | None = None
        #: FastAGI peer address -> AMI server name (several Asterisks); built at start
        self.origins: AgiOrigins | None = None
        self.web: Any = None
        #: first decision per uniqueid wins (cti/agi/decisions.py)
        self.decisions = DecisionLedger()
        self._started: list[str] = []

    # -- decisions -------------------------------------------------------------------
    def _server_of_call(self) -> str:
        """The AMI server of the FastAGI call being decided (by its peer address; cti/agi/origin.py)."""
        origins = self.origins
        return origins.server_for(AGI_PEER.get()) if origins is not None else self.ami.server

    def _publish_decision(self, d: Decision) -> None:
        server = self._server_of_call()
        if self.decisions.admit(server, d.uniqueid, d.customer_id, d.action):
            self.bus.publish("agi.decision", d.payload(server))

    def _on_agi_session(self, env: Any, variables: Mapping[str, str], elapsed: float, outcome: str) -> None:
        """Every FastAGI session: latency log; a fallback decision is published like any other."""
        if outcome != "ok" and self.decisions.admit(self._server_of_call(), env.uniqueid, None,
                                                    variables.get("CTI_ACTION")):
            self.bus.publish(
                "agi.decision",
                {
                    "server": self._server_of_call(),
                    "uniqueid": env.uniqueid,
                    "caller_number": "",
                    "caller_e164": None,
                    "customer_id": None,
                    "dialed": "",
                    "queue": variables.get("CTI_QUEUE"),
                    "priority": int(variables.get("CTI_PRIORITY") or 0),
                    "action": variables.get("CTI_ACTION"),
                    "route": "fallback",
                    "lang": variables.get("CTI_LANG"),
                    "ivr_choice": None,
                    "at": self.clock(),
                },
            )
        metrics = getattr(self, "metrics", None)
        if metrics is not None:
            metrics.observe_agi(elapsed, outcome)

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        s = self.settings
        check_exposure(s)  # a placeholder AMI secret off loopback: refuse; plain HTTP off loopback: warn
        raise_nofile_limit()
        try:
            if hasattr(self.bus, "start"):  # the Redis bus: fail loud if Redis is unreachable
                await self.bus.start()
            await init_schema(self.engine)
            endpoints = ami_endpoints(s)
            if len(endpoints) > 1:
                self.origins = await AgiOrigins.resolve((e.server, e.host) for e in endpoints)
            self.lookup = await open_lookup(s.database.url)
            saved = await active_rules(self.sessionmaker)  # rules saved from the web (/routing), else the file's
            self.routes = InboundRoutes(
                self.lookup,
                saved.routing if saved is not None else RoutingRules.from_config(s.routing),
                region=s.phone.default_region,
                sound_prefix=s.greeting.sound_prefix,
                greetings=self.greetings,
                on_decision=self._publish_decision,
                clock=lambda: datetime.fromtimestamp(self.clock(), timezone.utc),
            )
            await self.greetings.start()
            self._started.append("greetings")
            if self.cluster is not None:
                self._started.append("cluster")
                await self.cluster.start(on_ami_change=self._on_ami_change)
            else:
                await self.ami.start()
                self._started.append("ami")
                await self.tickets.start()
                self._started.append("tickets")
            await self.outbound_scheduler.start()
            self._started.append("outbound")
            self.agi = AgiServer(
                self.routes.routes(),
                self.routes.fallback,
                deadline_s=s.agi.deadline_ms / 1000,
                read_timeout_s=s.agi.read_timeout_s,
                max_env_bytes=s.agi.max_env_bytes,
                on_decision=self._on_agi_session,
                peer_allowed=(await PeerFilter.build(s.agi.allowed_peers, (e.host for e in endpoints))).allows,
            )
            await self.agi.start(s.agi.host, s.agi.port)
            self._started.append("agi")
            await self._start_web()
        except BaseException:
            await self.stop()
            raise
        frozen = freeze_startup_heap()
        log.info("cti_started", agi_port=self.agi.port, frozen_objects=frozen, ami=f"{s.ami.host}:{s.ami.port}", ami_enabled=s.ami.enabled)

    async def _start_web(self) -> None:
        """HTTP/websocket side, when the web package is present (cti/web)."""
        try:
            from cti.web.server import WebServer
        except ImportError:
            return
        self.web = WebServer(self)
        await self.web.start()
        self._started.append("web")

    async def stop(self) -> None:
        """Stop in reverse order: no new calls first, then the links, then the database."""
        if "web" in self._started and self.web is not None:
            await self.web.stop()
        if self.agi is not None:
            await self.agi.close()
        if "outbound" in self._started:
            await self.outbound_scheduler.stop()
        if "cluster" in self._started:
            await self.cluster.stop()
        if "tickets" in self._started:
            await self.tickets.stop()
        # The greeting sweeper writes to the database in a loop (a million rows after an import):
        # stop it before the AMI service, whose call recorder makes its final flush at stop.
        if "greetings" in self._started:
            await self.greetings.stop()
        if "ami" in self._started:
            await self.ami.stop()
        if self.lookup is not None:
            await self.lookup.close()
        await self.bus.close()
        await self.engine.dispose()
        self._started.clear()
        thaw()
        log.info("cti_stopped")

    def _on_ami_change(self, state: str, svc: AmiService) -> None:
        """Cluster mode: ``self.ami`` is the first Asterisk's service while this node consumes it."""
        if svc.server == self.ami.server:
            self.ami = svc
            self.outbound.ami = svc

    def banner(self) -> str:
        s = self.settings
        lines = [
            f"cti is running: FastAGI {s.agi.host}:{self.agi.port if self.agi else s.agi.port} "
            f"(AGI(agi://{s.agi.host}:{s.agi.port}/incoming)), "
            f"AMI {'off' if not s.ami.enabled else f'{s.ami.host}:{s.ami.port}'}"
        ]
        if self.web is not None:
            lines.append(f"agent console: http://{s.http.host}:{self.web.port}/")
        lines.append("Ctrl-C stops.")
        return "\n".join(lines)
