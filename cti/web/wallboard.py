"""The supervisors' live wallboard and the Prometheus endpoint, registered on the web app in one call.

    add_wallboard_routes(app, daemon, gate, hub)   # from WebServer._build_app

adds:

- ``GET /wallboard``: the page (static ``wallboard.html``/``.js``/``.css``; it logs in like the console);
- ``GET /api/wallboard[?sl=N]``: the board as JSON (supervisor/admin only);
- ``GET /ws/wallboard[?sl=N]``: the board pushed every :data:`PUSH_INTERVAL_S` seconds (supervisor/admin; token
  from the cookie/bearer header, or a first ``{"type": "auth", "token": ...}`` message, as ``/ws``). Frames:
  ``{"type": "wallboard", "board": {...}}`` (see :func:`cti.stats.live.wallboard`); ``ping`` -> ``pong``.
  This stream is apart from the agents' ``/ws`` hub: opening the wallboard does not replace a supervisor's
  console connection;
- ``GET /metrics``: Prometheus exposition (:mod:`cti.web.metrics`), unauthenticated; sets ``daemon.metrics``
  so the FastAGI latency is observed.

``sl`` is the service-level threshold in seconds (default 20, 1..600; at most :data:`MAX_LIVE_SL` distinct
values on live websockets at once, a new one past that is refused with 503). Today's figures survive a restart:
at start the calls that began since local midnight (``routing.timezone``) are read from the ``calls`` table.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable
from zoneinfo import ZoneInfo

import structlog
from aiohttp import WSMsgType, web

from cti.stats.intraday import intraday
from cti.stats.live import EndedCall, Targets, TodaysCalls, local_midnight, wallboard
from cti.stats.profile import seed_day
from cti.stats.reports import load_calls
from cti.stats.timefmt import local_iso
from cti.web.auth import SUPERVISORS, Gate, _error
from cti.web.clients import Client
from cti.web.metrics import Metrics
from cti.web.websocket import AUTH_TIMEOUT_S, MAX_CLIENT_MESSAGE
from cti.web.wsguard import CLOSE_POLICY

log = structlog.get_logger(__name__)

PUSH_INTERVAL_S = 1.0
WALLBOARD: web.AppKey["Wallboard"] = web.AppKey("cti_wallboard")
METRICS: web.AppKey[Metrics] = web.AppKey("cti_metrics", Metrics)
DEFAULT_SL_S = 20.0
#: Distinct ``sl`` values served live at once (each costs one board per push).
MAX_LIVE_SL = 8


def sl_of(request: web.Request) -> float:
    """The ``sl`` query parameter (seconds), default 20; 400 when not a number in 1..600."""
    raw = request.query.get("sl")
    if raw is None or raw == "":
        return DEFAULT_SL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 1 <= value <= 600:
        raise _error(web.HTTPBadRequest, "sl: seconds between 1 and 600")
    return value


class Wallboard:
    """Today's ended calls (from the bus, seeded from the database) + the live state -> boards."""

    def __init__(self, daemon: Any, gate: Gate, *, targets: Targets | None = None, max_queue: int = 64,
                 clock: Callable[[], float] = time.time, push_interval_s: float = PUSH_INTERVAL_S) -> None:
        self.daemon = daemon
        self.gate = gate
        config = getattr(daemon.settings, "wallboard", None)
        self.targets = targets or (Targets.from_config(config) if config is not None else Targets())
        daily = config.forecast_daily_calls if config is not None else 0.0
        self.forecast = seed_day(daily, 30) if daily > 0 else []
        self.max_queue = max_queue
        self.clock = clock
        self.push_interval_s = push_interval_s
        self.tz = ZoneInfo(daemon.settings.routing.timezone)
        self.today = TodaysCalls()
        self.day_start = local_midnight(clock(), self.tz)
        self.clients: dict[Client, float] = {}  # client -> its sl seconds
        self._sub: Any = None
        self._tasks: list[asyncio.Task[Any]] = []

    # -- numbers ------------------------------------------------------------------------------
    def board(self, sl_seconds: float | None = None, now: float | None = None) -> dict[str, Any]:
        now = self.clock() if now is None else now
        start = local_midnight(now, self.tz)
        if start != self.day_start:
            self.day_start = start
        self.today.prune(start)
        targets = self.targets if sl_seconds is None else replace(self.targets, sl_seconds=sl_seconds)
        calls = list(self.today.calls)
        board = wallboard(self._live_snapshot(now), calls, now, start, targets)
        board["at_local"] = local_iso(now, self.tz)
        board["day_start_local"] = local_iso(start, self.tz)
        board["timezone"] = self.tz.key
        board["intraday"] = intraday(calls, start, now, self.tz, 30, self.forecast, targets.answer_rate)
        return board

    def _live_snapshot(self, now: float) -> dict[str, Any]:
        """Queues (counts and members) and agents' states only: no caller data leaves this function."""
        state = self.daemon.ami.state
        queues = []
        for name in list(state.queues.queues):
            q = state.queue_snapshot(name, now)
            if q is not None:
                queues.append({"queue": q["queue"], "waiting_count": q["waiting_count"],
                               "longest_wait_s": q["longest_wait_s"], "members": q["members"]})
        agents = [{"state": a.state(now), "queues": list(a.memberships)} for a in state.agents.agents.values()]
        return {"queues": queues, "agents": agents}

    def add_ended(self, payload: dict[str, Any]) -> None:
        call = EndedCall.from_payload(payload)
        if call is not None and call.ended_at >= self.day_start:
            self.today.add(call)

    async def load_today(self) -> None:
        now = self.clock()
        start = datetime.fromtimestamp(local_midnight(now, self.tz), timezone.utc)
        rows = await load_calls(self.daemon.engine, start, datetime.fromtimestamp(now + 60, timezone.utc))
        calls = [c for c in (EndedCall.from_row(r) for r in rows) if c is not None]
        self.today = TodaysCalls([*calls, *self.today.calls])
        log.info("wallboard.loaded", calls=len(calls))

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._sub = self.daemon.bus.subscribe("call.ended", maxsize=100_000)
        try:
            await self.load_today()
        except Exception as exc:  # the board still runs on live calls
            log.error("wallboard.load_failed", error=str(exc))
        self._tasks = [asyncio.create_task(self._consume(), name="wallboard-calls"),
                       asyncio.create_task(self._push(), name="wallboard-push")]

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.close_clients()

    async def close_clients(self, _app: Any = None) -> None:
        """Close every wallboard socket (at the server's shutdown, so that it does not wait for them)."""
        clients = list(self.clients)
        self.clients.clear()
        await asyncio.gather(*(c.close(1001, "server stopping") for c in clients), return_exceptions=True)

    async def _consume(self) -> None:
        async for msg in self._sub:
            try:
                self.add_ended(msg.payload)
            except Exception:
                log.exception("wallboard.call_error", uniqueid=msg.payload.get("uniqueid"))

    async def _push(self) -> None:
        while True:
            await asyncio.sleep(self.push_interval_s)
            if self.clients:
                try:
                    self.broadcast()
                except Exception:
                    log.exception("wallboard.push_failed")

    def broadcast(self) -> None:
        now = self.clock()
        frames: dict[float, str] = {}
        for client, sl in list(self.clients.items()):
            if client.closed:
                self.clients.pop(client, None)
                continue
            if sl not in frames:
                frames[sl] = self._frame(self.board(sl, now))
            client.offer(frames[sl])

    @staticmethod
    def _frame(board: dict[str, Any]) -> str:
        return json.dumps({"type": "wallboard", "board": board}, separators=(",", ":"))

    # -- HTTP -----------------------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.FileResponse:
        from cti.web.server import STATIC

        return web.FileResponse(STATIC / "wallboard.html")

    async def api(self, request: web.Request) -> web.Response:
        await self.gate.require(request, *SUPERVISORS)
        resp = web.json_response(self.board(sl_of(request)))
        resp.headers["Cache-Control"] = "no-store"
        return resp

    async def ws(self, request: web.Request) -> web.StreamResponse:
        if not self.gate.origin_allowed(request):
            raise web.HTTPForbidden(text="origin not allowed")
        sl = sl_of(request)
        token = self.gate.token_of(request)
        agent = None
        if token is not None:
            agent, _ = await self.gate.agent_for_token(token)
            if agent.role not in SUPERVISORS:
                raise _error(web.HTTPForbidden, f"needs role {' or '.join(SUPERVISORS)}")
        if sl not in self.clients.values() and len(set(self.clients.values())) >= MAX_LIVE_SL:
            # one board is computed per distinct sl at every push: their number is bounded
            raise _error(web.HTTPServiceUnavailable, f"sl: at most {MAX_LIVE_SL} different values are served "
                         "live at once; use one of those in use or the default 20")
        guard = self.gate.ws_guard
        if agent is None and not guard.enter_pending():
            raise web.HTTPServiceUnavailable(text="too many unauthenticated websockets", headers={"Retry-After": "5"})
        ws = web.WebSocketResponse(heartbeat=30.0, compress=False, max_msg_size=MAX_CLIENT_MESSAGE)
        if agent is None:
            try:
                await ws.prepare(request)
                agent = await self._first_message_auth(ws)
            finally:
                guard.leave_pending()
            if agent is None:
                return ws
        else:
            await ws.prepare(request)
        client = Client(ws, request, agent, self.max_queue)
        self.clients[client] = sl
        log.info("wallboard.connected", agent=agent.username)
        client.offer(self._frame(self.board(sl)))
        budget = guard.budget()
        try:
            async for msg in ws:
                if not budget.spend():
                    log.warning("wallboard.message_budget_exceeded", agent=agent.username, rate=guard.rate)
                    await ws.close(code=CLOSE_POLICY, message=b"too many messages")
                    break
                if msg.type == WSMsgType.TEXT and msg.data[:40].replace(" ", "").startswith('{"type":"ping"'):
                    client.offer('{"type":"pong"}')
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.clients.pop(client, None)
            log.info("wallboard.disconnected", agent=agent.username, reason=client.close_reason)
        return ws

    async def _first_message_auth(self, ws: web.WebSocketResponse) -> Any:
        try:
            msg = await ws.receive(timeout=AUTH_TIMEOUT_S)
            data = json.loads(msg.data) if msg.type == WSMsgType.TEXT else None
            if not isinstance(data, dict) or data.get("type") != "auth":
                raise ValueError("first message is not auth")
            agent, _ = await self.gate.agent_for_token(str(data.get("token") or ""))
        except (asyncio.TimeoutError, ValueError, TypeError, web.HTTPException) as exc:
            log.info("wallboard.auth_failed", reason=type(exc).__name__)
            await ws.close(code=4401, message=b"authentication required")
            return None
        if agent.role not in SUPERVISORS:
            await ws.close(code=4403, message=b"supervisors only")
            return None
        return agent


def add_wallboard_routes(app: web.Application, daemon: Any, gate: Gate, hub: Any = None) -> Wallboard:
    """Register the wallboard (page, JSON, websocket) and ``/metrics`` on ``app``; both start and stop with it.

    Sets ``daemon.metrics`` (the FastAGI session callback of :class:`cti.app.Daemon` feeds its histogram)."""
    board = Wallboard(daemon, gate, clock=getattr(daemon, "clock", time.time))
    metrics = Metrics(daemon.bus, live=lambda: daemon.ami.state, ami=daemon.ami)
    metrics.count_websockets("wallboard", lambda: len(board.clients))
    if hub is not None:
        metrics.count_websockets("console", lambda: len(hub.by_agent_id))
    daemon.metrics = metrics
    app[WALLBOARD] = board
    app[METRICS] = metrics
    app.router.add_get("/wallboard", board.page)
    app.router.add_get("/api/wallboard", board.api)
    app.router.add_get("/ws/wallboard", board.ws)
    app.router.add_get("/metrics", metrics.handle)
    from cti.web.reports import add_report_routes

    add_report_routes(app, daemon, gate)  # /reports, /api/reports[/chart.svg|/export.csv|/export.pdf]

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await metrics.start()
        await board.start()
        yield
        await board.stop()
        await metrics.stop()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(board.close_clients)
    return board
