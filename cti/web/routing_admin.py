"""The routing-rules admin page (/routing) and its API, admin role only.

``add_routing_routes(app, daemon, gate, writer, hub)`` mounts

* ``GET /routing``: the page (it logs in itself through /api/login);
* ``GET /api/routing/rules`` -> ``{version, source, rules}`` (source ``saved`` or ``config``: the file config
  is the rules until the first save);
* ``PUT /api/routing/rules {rules, comment?}`` -> 200 new active version; 400 ``{error, errors: [{field,
  message}]}`` when invalid. The running FastAGI routes (``daemon.routes.set_rules``) and the pop's cross-sell
  rules (``hub.rules``/``hub.cache.rules``) switch at once, no restart;
* ``GET /api/routing/versions``; ``POST /api/routing/versions/{version}/activate`` (rollback);
* ``POST /api/routing/test {callerid, dialed?, ivr_choice?, at?, rules?}`` -> the route that caller gets now
  (or at ``at``), by the real caller lookup and :func:`resolve_route`; ``rules`` tests a draft unsaved.

On start the active saved version's cross-sell rules replace the file's (the daemon loads its routing part).
Every save/activation publishes ``routing.rules_changed {version}`` on the bus; every node (this one too, on a
Redis bus all of them) reloads the active version from the database on it, so a cluster switches together.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import structlog
from aiohttp import web
from sqlalchemy.exc import IntegrityError

from cti.customers.callerid import normalize
from cti.routing import store
from cti.routing.hours import is_open
from cti.routing.rules import resolve_route
from cti.tickets.httpjson import body, error, reply
from cti.web.auth import Gate

log = structlog.get_logger(__name__)

ADMIN = "admin"
TOPIC = "routing.rules_changed"


def _invalid(exc: store.RulesInvalid) -> web.HTTPBadRequest:
    import json

    return web.HTTPBadRequest(text=json.dumps({"error": "invalid rules", "errors": [e.as_dict() for e in exc.errors]},
                                              ensure_ascii=False), content_type="application/json")


class RoutingAdmin:
    def __init__(self, daemon: Any, gate: Gate, writer: Callable[..., Awaitable[Any]], hub: Any) -> None:
        self.daemon = daemon
        self.gate = gate
        self.writer = writer
        self.hub = hub
        self.sm = daemon.sessionmaker
        self._sub: Any = None
        self._task: asyncio.Task[None] | None = None

    # -- applying -----------------------------------------------------------------------------
    def _apply(self, valid: store.ValidRules) -> None:
        routes = self.daemon.routes
        if routes is not None:
            routes.set_rules(valid.routing)
        if self.hub is not None:
            self.hub.rules = valid.crosssell
            cache = getattr(self.hub, "cache", None)
            if cache is not None:
                cache.rules = valid.crosssell

    def _changed(self, version: int) -> None:
        try:
            self.daemon.bus.publish(TOPIC, {"version": version})
        except Exception:  # noqa: BLE001 - this node already applied; others keep theirs until restart
            log.exception("routing.publish_failed", version=version)

    async def _follow(self) -> None:
        async for msg in self._sub:
            try:
                valid = await store.active_rules(self.sm)
                if valid is not None:
                    self._apply(valid)
                    log.info("routing.rules_reloaded", version=msg.payload.get("version"))
            except Exception:  # noqa: BLE001 - keep following
                log.exception("routing.reload_failed")

    async def on_startup(self, app: web.Application) -> None:
        valid = await store.active_rules(self.sm)
        if valid is not None:
            self._apply(valid)
        self._sub = self.daemon.bus.subscribe(TOPIC, maxsize=100)
        self._task = asyncio.create_task(self._follow(), name="routing-rules-follow")

    async def on_cleanup(self, app: web.Application) -> None:
        if self._sub is not None:
            self._sub.close()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _config_document(self) -> dict[str, Any]:
        from cti.web.crosssell import load_rules

        return store.document_from_config(self.daemon.settings.routing,
                                          load_rules(self.daemon.settings.http.crosssell_rules))

    # -- handlers -----------------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.FileResponse:
        from cti.web.server import STATIC

        return web.FileResponse(STATIC / "routing.html")

    async def get_rules(self, request: web.Request) -> web.Response:
        await self.gate.require(request, ADMIN)
        v = await store.active(self.sm)
        if v is None:
            return reply({"version": None, "source": "config", "rules": self._config_document()})
        return reply({**v.summary(), "source": "saved", "rules": v.document})

    async def put_rules(self, request: web.Request) -> web.Response:
        account = await self.writer(request, ADMIN)
        b = await body(request)
        comment = b.get("comment") or ""
        if not isinstance(comment, str):
            raise error(web.HTTPBadRequest, "comment: expected a string")
        try:
            version, valid = await store.save(self.sm, b.get("rules"), created_by=account.username, comment=comment)
        except store.RulesInvalid as exc:
            raise _invalid(exc) from None
        except IntegrityError:  # another admin saved the same version number at the same moment
            raise error(web.HTTPConflict, "another version was saved at the same time: reload and retry") from None
        self._apply(valid)
        self._changed(version.version)
        return reply({**version.summary(), "source": "saved", "rules": version.document})

    async def list_versions(self, request: web.Request) -> web.Response:
        await self.gate.require(request, ADMIN)
        return reply({"versions": [v.summary() for v in await store.versions(self.sm)]})

    async def activate(self, request: web.Request) -> web.Response:
        await self.writer(request, ADMIN)
        try:
            number = int(request.match_info["version"])
        except ValueError:
            raise error(web.HTTPNotFound, "no such version") from None
        try:
            done = await store.activate(self.sm, number)
        except store.RulesInvalid as exc:
            raise _invalid(exc) from None
        if done is None:
            raise error(web.HTTPNotFound, "no such version")
        self._apply(done[1])
        self._changed(done[0].version)
        return reply({**done[0].summary(), "source": "saved", "rules": done[0].document})

    async def test_caller(self, request: web.Request) -> web.Response:
        await self.writer(request, ADMIN)
        b = await body(request)
        callerid = b.get("callerid")
        dialed = b.get("dialed") or ""
        ivr_choice = b.get("ivr_choice")
        if not isinstance(callerid, str) or not isinstance(dialed, str):
            raise error(web.HTTPBadRequest, "callerid, dialed: expected strings")
        if ivr_choice in ("", None):
            ivr_choice = None
        elif not isinstance(ivr_choice, str):
            raise error(web.HTTPBadRequest, "ivr_choice: expected a string")
        when = datetime.now(timezone.utc)
        if b.get("at"):
            try:
                when = datetime.fromisoformat(str(b["at"]))
            except ValueError:
                raise error(web.HTTPBadRequest, "at: expected an ISO date-time") from None
        if b.get("rules") is not None:
            try:
                rules = store.validate(b["rules"]).routing
            except store.RulesInvalid as exc:
                raise _invalid(exc) from None
            draft = True
        else:
            if self.daemon.routes is None:
                raise error(web.HTTPServiceUnavailable, "routing not started")
            rules, draft = self.daemon.routes.rules, False
        if when.tzinfo is None:
            when = when.replace(tzinfo=rules.tz)
        s = self.daemon.settings
        number = normalize(callerid[:64], s.phone.default_region)
        facts = None
        if number.e164 and self.daemon.lookup is not None:
            facts = await self.daemon.lookup.lookup(number.e164)
        d = resolve_route(facts, dialed[:32], rules, when, ivr_choice[:4] if ivr_choice else None)
        local = when.astimezone(rules.tz)
        prefix = s.greeting.sound_prefix.rstrip("/")
        greeting = f"{prefix}/{facts.greeting}" if facts and facts.greeting else f"{prefix}/greet-generic-{d.language}"
        customer = None
        if facts is not None:
            customer = {"customer_id": facts.customer_id, "name": f"{facts.family_name}{facts.given_name}{facts.title}",
                        "vip": facts.vip, "open_complaint": facts.open_complaint, "language": facts.language,
                        "product_lines": sorted(facts.product_lines)}
        return reply({
            "number": {"raw": number.raw, "e164": number.e164, "kind": number.kind},
            "found": facts is not None, "customer": customer,
            "at": local.isoformat(), "holiday": local.date() in rules.holidays, "open": is_open(rules.hours, local),
            "draft": draft,
            "decision": {"queue": d.queue, "priority": d.priority, "action": d.action, "route": d.route,
                         "language": d.language, "greeting": greeting},
        })


def add_routing_routes(app: web.Application, daemon: Any, gate: Gate, writer: Callable[..., Awaitable[Any]],
                       hub: Any) -> RoutingAdmin:
    """Mount /routing and /api/routing/* (see the module docstring)."""
    admin = RoutingAdmin(daemon, gate, writer, hub)
    app.router.add_get("/routing", admin.page)
    app.router.add_get("/api/routing/rules", admin.get_rules)
    app.router.add_put("/api/routing/rules", admin.put_rules)
    app.router.add_get("/api/routing/versions", admin.list_versions)
    app.router.add_post("/api/routing/versions/{version}/activate", admin.activate)
    app.router.add_post("/api/routing/test", admin.test_caller)
    app.on_startup.append(admin.on_startup)
    app.on_cleanup.append(admin.on_cleanup)
    return admin
