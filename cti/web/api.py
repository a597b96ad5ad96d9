"""REST API of the console: state controls, wrap-up, customers, call history. Every route needs a token."""

from __future__ import annotations

import dataclasses
import functools
import json
import time
import unicodedata
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import structlog
from aiohttp import web
from sqlalchemy import and_, false, func, or_, select

from cti.agents.accounts import Agent, list_agents
from cti.ami.link import AmiActionError, AmiError
from cti.customers.records import InvalidRecord, customer_from_fields
from cti.customers.repository import add_customer, get_customer, update_customer
from cti.customers.scope import OutOfScope, scope_of
from cti.db.tables import calls, customers
from cti.web.auth import SUPERVISORS, Gate, _error
from cti.web.pops import calls_view, customer_view, complaints_view, _iso
from cti.web.wrapup import WrapupRefused, save_wrapup

log = structlog.get_logger(__name__)

DISPOSITIONS = ("resolved", "follow_up", "complaint", "sale", "information", "wrong_number", "other")
MAX_NOTES = 4000
STATES = ("ready", "paused", "logged_out")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False, default=_iso))


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _error(web.HTTPBadRequest, "expected a JSON object") from None
    if not isinstance(body, dict):
        raise _error(web.HTTPBadRequest, "expected a JSON object")
    return body


def _scoped(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    """The customer scope's refusal (:class:`OutOfScope`) as a 403."""
    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except OutOfScope as exc:
            raise _error(web.HTTPForbidden, str(exc)) from None

    return wrapped


def clean_notes(text: Any) -> str:
    """Wrap-up notes: keep newlines and tabs, drop other control characters, bound the length."""
    s = str(text or "")
    s = "".join(ch for ch in s if ch in "\n\t" or unicodedata.category(ch)[0] != "C").strip()
    if len(s) > MAX_NOTES:
        raise _error(web.HTTPBadRequest, f"notes: at most {MAX_NOTES} characters")
    return s


class Api:
    def __init__(self, daemon: Any, gate: Gate, hub: Any) -> None:
        self.daemon = daemon
        self.clock = getattr(daemon, "clock", time.time)  # the daemon's "now" (cti demo: simulated)
        self.gate = gate
        self.hub = hub
        self.sessionmaker = daemon.sessionmaker

    def routes(self) -> list[web.RouteDef]:
        return [web.route(r.method, r.path, _scoped(r.handler), **r.kwargs) for r in [
            web.get("/api/me", self.me),
            web.post("/api/agent/state", self.set_state),
            web.get("/api/agents", self.agents),
            web.post("/api/calls/wrapup", self.wrapup),
            web.get("/api/calls", self.history),
            web.get("/api/customers/{id:\\d+}", self.customer),
            web.post("/api/customers", self.create_customer),
            web.put("/api/customers/{id:\\d+}", self.edit_customer),
        ]]

    async def _writer(self, request: web.Request, *roles: str) -> Agent:
        """State-changing calls: a browser must come from an allowed origin (CSRF), then the token."""
        if not self.gate.origin_allowed(request):
            raise _error(web.HTTPForbidden, "origin not allowed")
        return await self.gate.require(request, *roles)

    # -- me, agents ----------------------------------------------------------------------
    async def me(self, request: web.Request) -> web.Response:
        agent = await self.gate.require(request)
        return _json({"agent": agent.public(), "dispositions": DISPOSITIONS})

    async def agents(self, request: web.Request) -> web.Response:
        await self.gate.require(request, *SUPERVISORS)
        async with self.sessionmaker() as session:
            accounts = await list_agents(await session.connection())
        live = self.daemon.ami.state
        now = self.clock()
        out = []
        for a in accounts:
            st = live.agents.by_interface(a.interface) if a.interface else None
            out.append({**a.public(), "active": a.active, "live": st.snapshot(now) if st is not None else None})
        return _json({"agents": out})

    # -- state controls --------------------------------------------------------------------
    async def set_state(self, request: web.Request) -> web.Response:
        agent = await self._writer(request, "agent", *SUPERVISORS)
        body = await _body(request)
        state = body.get("state")
        if state not in STATES:
            raise _error(web.HTTPBadRequest, f"state: one of {', '.join(STATES)}")
        reason = str(body.get("reason") or "").strip()[:64] or None
        if not agent.interface:
            raise _error(web.HTTPConflict, "this account has no phone interface")
        ami = self.daemon.ami
        if not ami.config.enabled or not ami.connected:
            raise _error(web.HTTPServiceUnavailable, "the PBX (AMI) is not connected: state cannot change now")
        iface = agent.interface
        try:
            if state == "ready":
                for queue, penalty in agent.skills.items():
                    try:
                        await ami.queue_add(queue, iface, agent.display_name or agent.username, penalty)
                    except AmiActionError as exc:
                        if "Already there" not in str(exc):
                            raise
                await ami.queue_pause(iface, False)
            elif state == "paused":
                await ami.queue_pause(iface, True, reason=reason or "pause")
            else:
                for queue in agent.skills:
                    try:
                        await ami.queue_remove(queue, iface)
                    except AmiActionError as exc:
                        if "Not there" not in str(exc):
                            raise
        except AmiActionError as exc:
            raise _error(web.HTTPBadGateway, f"Asterisk refused: {exc}") from None
        except AmiError as exc:
            raise _error(web.HTTPServiceUnavailable, f"the PBX (AMI) is not connected: {exc}") from None
        log.info("agent.state_set", agent=agent.username, state=state, reason=reason)
        return _json({"ok": True, "state": state, "reason": reason})

    # -- wrap-up -----------------------------------------------------------------------------
    async def wrapup(self, request: web.Request) -> web.Response:
        agent = await self._writer(request, "agent", *SUPERVISORS)
        body = await _body(request)
        uniqueid = str(body.get("uniqueid") or "")[:64]
        server = str(body.get("server") or self.daemon.settings.ami.server)[:64]
        disposition = body.get("disposition")
        if not uniqueid:
            raise _error(web.HTTPBadRequest, "uniqueid: required")
        if disposition not in DISPOSITIONS:
            raise _error(web.HTTPBadRequest, f"disposition: one of {', '.join(DISPOSITIONS)}")
        notes = clean_notes(body.get("notes"))
        async with self.sessionmaker() as session, session.begin():
            conn = await session.connection()
            row = (await conn.execute(select(calls.c.agent_interface, calls.c.agent_id, calls.c.customer_id).where(
                calls.c.server == server, calls.c.uniqueid == uniqueid))).first()
            scope = await scope_of(conn, agent)
            if scope.is_dealer and (row is None or row.customer_id is None):
                raise _error(web.HTTPForbidden, "not your call")
            await scope.check(conn, row.customer_id if row is not None else None)
            base = body.get("base_version")
            try:
                saved = await save_wrapup(
                    conn, agent, server=server, uniqueid=uniqueid, disposition=disposition, notes=notes,
                    answered_live=self.hub.answered_by(agent.interface, server, uniqueid),
                    base_version=base if isinstance(base, int) and not isinstance(base, bool) else None,
                    now=datetime.fromtimestamp(self.clock(), timezone.utc))
            except WrapupRefused as exc:
                raise _error(web.HTTPForbidden if exc.status == 403 else web.HTTPConflict, str(exc)) from None
        log.info("call.wrapped_up", uniqueid=uniqueid, agent=agent.username, disposition=disposition,
                 version=saved.version)
        self.daemon.bus.publish("call.wrapped_up", {"server": server, "uniqueid": uniqueid, "agent": agent.username,
                                                    "disposition": disposition, "version": saved.version,
                                                    "at": self.clock()})
        return _json({"ok": True, "version": saved.version, "edited": saved.edited})

    # -- history -------------------------------------------------------------------------------
    async def history(self, request: web.Request) -> web.Response:
        agent = await self.gate.require(request)
        q = request.query.get("q", "").strip()[:64]
        try:
            limit = max(1, min(200, int(request.query.get("limit", "50"))))
            offset = max(0, int(request.query.get("offset", "0")))
        except ValueError:
            raise _error(web.HTTPBadRequest, "limit/offset: integers") from None
        name = func.coalesce(customers.c.family_name, "") + func.coalesce(customers.c.given_name, "")
        stmt = (select(calls.c.server, calls.c.uniqueid, calls.c.started_at, calls.c.caller_number,
                       calls.c.caller_e164, calls.c.queue, calls.c.outcome, calls.c.wait_s, calls.c.talk_s,
                       calls.c.agent_interface, calls.c.disposition, calls.c.notes, calls.c.customer_id,
                       customers.c.family_name, customers.c.given_name, customers.c.title,
                       customers.c.language, customers.c.vip)
                .select_from(calls.outerjoin(customers, customers.c.id == calls.c.customer_id)))
        async with self.sessionmaker() as session:
            scope = await scope_of(await session.connection(), agent)
        conds = [scope.where(calls.c.customer_id)]
        if agent.role == "agent":
            conds.append(or_(calls.c.agent_id == agent.id,
                             calls.c.agent_interface == agent.interface if agent.interface else false()))
        if q:
            like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            conds.append(or_(calls.c.caller_number.like(like, escape="\\"), calls.c.caller_e164.like(like, escape="\\"),
                             name.like(like, escape="\\"), calls.c.notes.like(like, escape="\\"),
                             calls.c.disposition.like(like, escape="\\"), calls.c.uniqueid == q))
        stmt = stmt.where(and_(*conds))
        stmt = stmt.order_by(calls.c.started_at.desc(), calls.c.id.desc()).limit(limit).offset(offset)
        async with self.sessionmaker() as session:
            rows = (await session.execute(stmt)).mappings().all()
        from cti.web.pops import name_with_title

        out = []
        for r in rows:
            d = dict(r)
            d["customer_name"] = (name_with_title(r["family_name"] or "", r["given_name"] or "", r["title"] or "",
                                                  r["language"] or "zh") if r["customer_id"] else None)
            for k in ("family_name", "given_name", "title", "language"):
                d.pop(k)
            d["vip"] = bool(r["vip"])
            out.append(d)
        return _json({"calls": out})

    # -- customers -------------------------------------------------------------------------------
    async def customer(self, request: web.Request) -> web.Response:
        agent = await self.gate.require(request)
        async with self.sessionmaker() as session:
            conn = await session.connection()
            customer_id = int(request.match_info["id"])
            await (await scope_of(conn, agent)).check(conn, customer_id)
            c = await get_customer(conn, customer_id)
        if c is None:
            raise _error(web.HTTPNotFound, "no such customer")
        return _json({"customer": customer_view(c), "open_complaints": complaints_view(c["open_tickets"], self.clock()),
                      "last_calls": calls_view(c["last_calls"])})

    def _record(self, body: dict[str, Any]) -> Any:
        fields = {k: (None if body.get(k) is None else str(body.get(k)))
                  for k in ("family_name", "given_name", "title", "language", "phones", "email", "dealer", "products")}
        fields["vip"] = "yes" if body.get("vip") in (True, "yes", "true", "1", 1) else "no"
        try:
            return customer_from_fields(fields, self.daemon.settings.phone.default_region)
        except InvalidRecord as exc:
            raise _error(web.HTTPBadRequest, str(exc)) from None

    async def create_customer(self, request: web.Request) -> web.Response:
        agent = await self._writer(request, "agent", *SUPERVISORS)
        record = self._record(await _body(request))
        try:
            async with self.sessionmaker() as session, session.begin():
                conn = await session.connection()
                scope = await scope_of(conn, agent)
                record = dataclasses.replace(record, dealer=scope.check_dealer(None, record.dealer))
                customer_id = await add_customer(conn, record)
        except InvalidRecord as exc:
            raise _error(web.HTTPConflict, str(exc)) from None
        self.daemon.greetings.request(customer_id, record.family_name, record.given_name, record.title, record.language)
        log.info("customer.created", customer_id=customer_id, agent=agent.username)
        return _json({"id": customer_id}, status=201)

    async def edit_customer(self, request: web.Request) -> web.Response:
        agent = await self._writer(request, "agent", *SUPERVISORS)
        customer_id = int(request.match_info["id"])
        record = self._record(await _body(request))
        try:
            async with self.sessionmaker() as session, session.begin():
                conn = await session.connection()
                scope = await scope_of(conn, agent)
                await scope.check(conn, customer_id)
                current = (await conn.execute(select(customers.c.dealer).where(customers.c.id == customer_id))).scalar()
                record = dataclasses.replace(record, dealer=scope.check_dealer(current, record.dealer))
                change = await update_customer(conn, customer_id, record)
        except InvalidRecord as exc:
            status = web.HTTPNotFound if str(exc).startswith("no customer") else web.HTTPConflict
            raise _error(status, str(exc)) from None
        if change is not None:
            self.daemon.greetings.request(change.customer_id, change.family_name, change.given_name, change.title,
                                          change.language)
        log.info("customer.updated", customer_id=customer_id, agent=agent.username, renamed=change is not None)
        self.daemon.bus.publish("customer.updated", {"customer_id": customer_id, "at": time.time()})  # pop caches
        return _json({"id": customer_id, "greeting_queued": change is not None})
