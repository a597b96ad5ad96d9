"""The web side of the daemon: aiohttp app (REST API, websocket hub, static console) on http.host/port."""

from __future__ import annotations

import gc
import secrets
import time
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from cti.fdlimit import web_connection_budget
from cti.netaddr import parse_networks
from cti.outbound.http import add_routes as add_outbound_routes
from cti.web.api import Api
from cti.web.auth import Gate
from cti.web.backoffice import add_backoffice_routes
from cti.web.crosssell import RuleError, load_rules
from cti.web.gcpolicy import GcPolicy, tune_thresholds
from cti.web.hub import PopHub
from cti.web.outbound import forward_outbound
from cti.web.loginguard import PasswordChecks
from cti.web.ratelimit import LoginLimiter
from cti.web.routing_admin import add_routing_routes
from cti.web.sessions import SessionWatch
from cti.web.tokens import TokenSigner
from cti.web.transport import CappedSite, ConnectionCap
from cti.web.validation import validation_middleware
from cti.web.wallboard import add_wallboard_routes
from cti.web.websocket import WebsocketEndpoint
from cti.web.wsguard import WsGuard

log = structlog.get_logger(__name__)

#: longer than the websocket heartbeat (:data:`cti.web.websocket.HEARTBEAT_S`): no timer rounding
TIMEOUT_CEIL_THRESHOLD_S = 120.0

#: asyncio accepts up to ``backlog`` connections in one callback: a reconnecting flood of idle sockets in
#: batches of 1,024 held the loop (FastAGI included) for hundreds of ms; smaller batches interleave.
ACCEPT_BACKLOG = 128

STATIC = Path(str(resources.files("cti.web").joinpath("static")))

#: Response headers of every page: no framing, no sniffing, scripts only from cti itself.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
                               "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
}


@web.middleware
async def _security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    resp = await handler(request)
    if not isinstance(resp, web.WebSocketResponse) and not resp.prepared:
        for k, v in SECURITY_HEADERS.items():
            resp.headers.setdefault(k, v)
        if request.path.startswith("/api/"):
            resp.headers.setdefault("Cache-Control", "no-store")
    return resp


class WebServer:
    """Built by the composition root: ``WebServer(daemon)``, ``await start()``, ``.port``, ``await stop()``."""

    def __init__(self, daemon: Any, *, max_queue: int = 256) -> None:
        self.daemon = daemon
        cfg = daemon.settings.http
        secret = cfg.token_secret.encode() if cfg.token_secret else secrets.token_bytes(32)
        if not cfg.token_secret and daemon.settings.bus.url == "memory://":  # cluster: shared, see start()
            log.info("web.token_secret_random", hint="set http.token_secret to keep logins across restarts")
        try:
            rules = load_rules(cfg.crosssell_rules)
        except RuleError as exc:
            from cti.config import ConfigError

            raise ConfigError(f"invalid value for http.crosssell_rules: {exc}") from None
        self.gate = Gate(TokenSigner(secret, cfg.token_ttl_s), LoginLimiter(), daemon.sessionmaker,
                         tuple(cfg.console_origins), checks=PasswordChecks(cfg.login_hash_concurrency),
                         trusted_proxies=parse_networks(cfg.trusted_proxies),
                         ws_guard=WsGuard(cfg.max_pending_websockets, cfg.ws_message_rate))
        ami = daemon.ami
        self.hub = PopHub(daemon.bus, daemon.sessionmaker, rules=rules, live=lambda: ami.state,
                          timezone=daemon.settings.routing.timezone, max_queue=max_queue,
                          clock=getattr(daemon, "clock", time.time))
        self.hub.quiet_complaints = cfg.crosssell_skip_complaints
        self.wallboard: Any = None  # set by _build_app
        self.sessions = SessionWatch(daemon.bus, daemon.sessionmaker, lambda: [
            *self.hub.by_agent_id.values(), *(self.wallboard.clients if self.wallboard is not None else ())])
        self.gate.sessions = self.sessions  # logout ends the account's sessions everywhere
        self.api = Api(daemon, self.gate, self.hub)
        self.ws = WebsocketEndpoint(self.gate, self.hub)
        self.app = self._build_app()
        self.gc_policy = GcPolicy(lambda: len(self.hub.by_agent_id), lambda: bool(self.hub.current))
        self._runner: web.AppRunner | None = None
        self._gc_thresholds: tuple[int, ...] | None = None  # the collector's, restored on stop
        self.security: Any = None  # cluster mode: token secret + login limits shared through Redis
        self.port: int | None = None
        self.cap: ConnectionCap | None = None

    def _build_app(self) -> web.Application:
        # every request's path, query and JSON body are checked before any handler (cti/web/validation.py)
        body_timeout = self.daemon.settings.http.body_timeout_s
        app = web.Application(middlewares=[_security_headers, validation_middleware(body_timeout)],
                              client_max_size=256 * 1024)
        app.router.add_post("/api/login", self.gate.login)
        app.router.add_post("/api/logout", self.gate.logout)
        app.router.add_routes(self.api.routes())
        app.router.add_get("/ws", self.ws.handle)
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC, append_version=False)
        app.router.add_get("/favicon.ico", self._favicon)  # browsers ask for it on every page; the pages link the SVG
        self.wallboard = add_wallboard_routes(app, self.daemon, self.gate, self.hub)  # /wallboard, /api/wallboard, /ws/wallboard, /metrics
        # tickets, org chart, knowledge base (/api/tickets, /api/org, /api/kb) + their websocket notifications
        add_backoffice_routes(app, self.daemon, self.gate, self.api._writer, self.hub,
                              clock=getattr(self.daemon, "clock", time.time))
        # outbound follow-ups (/api/outbound/*, /outbound/console, /outbound/dealer) on the daemon's one service
        # (the daemon runs its scheduler); outbound.dialing/dial_result -> the dialing agent's console websocket
        add_outbound_routes(app, self.daemon.sessionmaker, self.daemon.ami, self.gate.require,
                            require_write=self.api._writer, bus=self.daemon.bus, service=self.daemon.outbound,
                            scheduler=False, zone=self.daemon.settings.outbound.center_timezone)
        forward_outbound(app, self.daemon.bus, self.hub)
        # routing rules admin page (/routing, /api/routing/*; admin only): versioned, hot-swapped into FastAGI
        add_routing_routes(app, self.daemon, self.gate, self.api._writer, self.hub)
        return app

    async def _favicon(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "favicon.svg", headers={"Content-Type": "image/svg+xml",
                                                                 "Cache-Control": "max-age=86400"})

    async def _index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def start(self) -> None:
        cfg = self.daemon.settings.http
        bus = self.daemon.settings.bus
        if bus.url != "memory://":  # several nodes: every node verifies every token, shares login limits
            from cti.cluster.security import ClusterSecurity

            self.security = ClusterSecurity(bus.url, bus.stream, self.daemon.node_id, cfg.token_secret)
            await self.security.start()
            self.gate.signer = TokenSigner(self.security.secret, cfg.token_ttl_s)
            self.gate.limiter = self.security.limiter
        await self.hub.start()
        await self.sessions.start()
        # timeout_ceil_threshold above the websocket heartbeat: aiohttp rounds timers longer than the
        # threshold up to the next whole second, which makes every console connected within the same
        # second ping at the same instant: a burst of thousands of callbacks once per second that every
        # pop waits behind. Unrounded, each console's heartbeat keeps its own phase.
        # keepalive_timeout is armed at connect and after each response and closes a connection that
        # has no complete request head by then: the header timeout and the idle timeout in one.
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0,
                                     timeout_ceil_threshold=TIMEOUT_CEIL_THRESHOLD_S,
                                     keepalive_timeout=cfg.header_timeout_s)
        await self._runner.setup()
        # the cap leaves agi.reserved_fds descriptors free: FastAGI answers whatever the web side suffers
        self.cap = ConnectionCap(web_connection_budget(cfg.max_connections, self.daemon.settings.agi.reserved_fds))
        site = CappedSite(self._runner, cfg.host, cfg.port, self.cap, backlog=ACCEPT_BACKLOG, reuse_address=True)
        await site.start()
        server = site._server  # the bound socket gives the real port when http.port is 0
        self.port = server.sockets[0].getsockname()[1] if server is not None and server.sockets else cfg.port
        # The daemon's start-up heap (modules, SQLAlchemy, rules) is permanent: keep it out of the
        # collector's full scans, which otherwise grow with every byte of it (pauses on the pop path).
        gc.collect()
        gc.freeze()
        self._gc_thresholds = tune_thresholds()
        self.gc_policy.start()
        log.info("web.started", host=cfg.host, port=self.port, max_connections=self.cap.limit)

    async def stop(self) -> None:
        await self.gc_policy.stop()
        if self._gc_thresholds is not None:
            gc.set_threshold(*self._gc_thresholds)
            self._gc_thresholds = None
        await self.sessions.stop()
        await self.hub.stop()
        self.gate.checks.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.security is not None:
            await self.security.stop()
            self.security = None
