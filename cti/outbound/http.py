"""REST endpoints for outbound follow-ups, mounted by cti/web.

    svc = add_routes(app, sessionmaker, ami, gate.require, require_write=writer, bus=bus)

builds one :class:`OutboundService` (or takes ``service=``) and, when ``bus`` is given, runs its
:class:`OutboundScheduler` in the app's ``cleanup_ctx`` (the dial results and the rules need it:
build the service once and share it). ``require(request, *roles) -> account`` (``id``,
``username``, ``role``, ``interface``) raises 401/403 itself. JSON in and out; errors are
``{"error": "..."}`` with 400/403/404/409; a dial refused by the policy is 409
``{"error", "blocked": [{"code", "message"}]}``. Times are ISO 8601 (UTC when no offset).

=======  ======================================  ==========================================================
GET      /api/outbound/next                      ?limit= -> {followups: [preview]}: the agent's next due
                                                 follow-ups (a dealer contact: their dealer's, all open)
GET      /api/outbound/followups/{id}            -> preview {followup, customer, phones: [{e164, allowed,
                                                 blocked}]}
POST     /api/outbound/followups                 {customer_id, reason, due_at?, due_until?, owner_id?,
                                                 skill?} -> 201 {followup_id, created, merged}
POST     /api/outbound/followups/{id}/dial       {phone?} -> 202 {attempt_id, action_id, followup_id,
                                                 customer_id, phone, reasons}; 409 blocked / being dialed
POST     /api/outbound/attempts/{id}/outcome     {outcome: reached|no_answer|call_back_later|wrong_number|
                                                 refused, notes?, new_need?, callback_at?, opt_out?}
                                                 -> {attempt_id, followup_id, customer_id, followup_status,
                                                 lead_id}: the attempt id is the console's current call
POST     /api/outbound/events                    {kind, customer_id, key, detail?} (supervisor) -> the
                                                 follow-ups the rules made
GET      /api/outbound/leads                     ?dealer= -> {leads: [lead + credits]} (dealer contact:
                                                 their own only)
POST     /api/outbound/leads/{id}                {status: new|contacted|won|lost, result?} (the lead's
                                                 dealer contact or a supervisor)
GET      /api/outbound/dnc                       -> {entries} (supervisor)
POST     /api/outbound/dnc                       {customer_id? , e164?, reason?} -> 201 {id}
POST     /api/outbound/handover                  {team, body, followup_id?} -> 201 {id}
GET      /api/outbound/reports/handover          ?team= &day=YYYY-MM-DD &format=json|csv (supervisor)
GET      /api/outbound/reports/frequency         ?since= &until= (supervisor) -> caps held or not
GET      /outbound/dealer                        HTML page: the dealer contact's leads and their fate
GET      /outbound/console                       HTML page: preview dialing (next follow-ups, dial, outcome form)
=======  ======================================  ==========================================================

Bus messages for the console (the web hub may forward them to the agent):
``outbound.dialing`` {agent_id, interface, followup_id, attempt_id, customer_id, reasons, phone, at}
(the pop showing the follow-up), ``outbound.dial_result`` {attempt_id, followup_id, agent_id,
status: connected|failed, failure, at}, ``outbound.lead`` {lead_id, customer_id, at}.
"""

from __future__ import annotations

import functools
import html
import json
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo
from typing import Any, AsyncIterator, Awaitable, Callable

from aiohttp import web
from sqlalchemy import false, or_, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from cti.customers.scope import OutOfScope, scope_of
from cti.db.tables import calls, org_people, outbound_attempts
from cti.outbound import repository as repo
from cti.outbound.reports import contact_frequency, handover, handover_csv, add_handover_note
from cti.outbound.rules import BusinessEvent
from cti.outbound.scheduler import OutboundScheduler
from cti.outbound.service import SUPERVISORS, DialBlocked, OutboundService

Require = Callable[..., Awaitable[Any]]
STATIC = Path(__file__).with_name("static")
CONSOLE_CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self'"
SERVICE_KEY = web.AppKey("outbound_service", OutboundService)


def _error(cls: type[web.HTTPException], message: str, **extra: Any) -> web.HTTPException:
    return cls(text=json.dumps({"error": message, **extra}, ensure_ascii=False), content_type="application/json")


def _reply(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(
        d, ensure_ascii=False, default=lambda o: o.isoformat() if isinstance(o, (datetime, date)) else str(o)))


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise _error(web.HTTPBadRequest, "expected a JSON object") from None
    if not isinstance(data, dict):
        raise _error(web.HTTPBadRequest, "expected a JSON object")
    return data


def _int(value: Any, name: str, required: bool = False) -> int | None:
    if value is None or value == "":
        if required:
            raise _error(web.HTTPBadRequest, f"{name}: required")
        return None
    if isinstance(value, bool):
        raise _error(web.HTTPBadRequest, f"{name}: expected an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _error(web.HTTPBadRequest, f"{name}: expected an integer") from None


def _str(value: Any, name: str, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise _error(web.HTTPBadRequest, f"{name}: required")
        return None
    if not isinstance(value, str):
        raise _error(web.HTTPBadRequest, f"{name}: expected a string")
    return value


def _time(value: Any, name: str) -> datetime | None:
    s = _str(value, name)
    if s is None:
        return None
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        raise _error(web.HTTPBadRequest, f"{name}: expected an ISO 8601 time") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _errors(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except DialBlocked as exc:
            raise _error(web.HTTPConflict, str(exc), blocked=[b.public() for b in exc.decision.blocks]) from None
        except repo.NotFound as exc:
            raise _error(web.HTTPNotFound, str(exc)) from None
        except (repo.Forbidden, OutOfScope) as exc:
            raise _error(web.HTTPForbidden, str(exc)) from None
        except repo.Conflict as exc:
            raise _error(web.HTTPConflict, str(exc)) from None
        except repo.OutboundError as exc:
            raise _error(web.HTTPBadRequest, str(exc)) from None

    return wrapped


async def _may_record_dnc(conn: Any, account: Any, customer_id: int | None, e164: str | None) -> None:
    """Do-not-call entries are the supervisors'; an agent records one only for the customer of a call
    they handled (the caller asked on the phone). Dealer contacts never."""
    if account.role in SUPERVISORS:
        return
    scope = await scope_of(conn, account)
    if scope.is_dealer or account.role != "agent":
        raise repo.Forbidden("do-not-call entries are recorded by supervisors and by the agent on the call")
    if customer_id is None or e164 is not None:
        raise repo.Forbidden("an agent records do-not-call for the customer of their call (a number: a supervisor)")
    a = outbound_attempts
    handled = (await conn.execute(select(calls.c.id).where(calls.c.customer_id == customer_id, or_(
        calls.c.agent_id == account.id,
        calls.c.agent_interface == account.interface if getattr(account, "interface", None) else false())).limit(1)
    )).first() or (await conn.execute(select(a.c.id).where(a.c.customer_id == customer_id,
                                                            a.c.agent_id == account.id).limit(1))).first()
    if handled is None:
        raise repo.Forbidden("you have not handled a call of this customer")


async def _may_write_handover(conn: Any, account: Any, team: str, followup_id: int | None) -> None:
    """A handover note is written by a member of the team (org-chart department) or a supervisor,
    about a follow-up within the author's reach."""
    if account.role not in SUPERVISORS:
        if (await scope_of(conn, account)).is_dealer:
            raise repo.Forbidden("dealer contacts do not write handover notes")
        department = (await conn.execute(select(org_people.c.department)
                                         .where(org_people.c.agent_id == account.id))).scalar()
        if department != team:
            raise repo.Forbidden(f"only members of team {team!r} or a supervisor write its handover notes")
    if followup_id is not None:
        row = await repo.get_followup(conn, followup_id)
        await (await scope_of(conn, account)).check(conn, row.customer_id)


def _credits_text(credits: list[dict[str, Any]]) -> str:
    return ", ".join("{} {:.0%}".format(c["party"], c["share"]) for c in credits)


def routes(svc: OutboundService, require: Require, require_write: Require | None = None, *,
           zone: str = "Asia/Shanghai") -> list[web.RouteDef]:
    write = require_write or require
    sm = svc.sm

    @_errors
    async def next_followups(request: web.Request) -> web.Response:
        account = await require(request)
        limit = min(_int(request.query.get("limit"), "limit") or 10, 50)
        return _reply({"followups": await svc.next_for(account, limit)})

    @_errors
    async def show(request: web.Request) -> web.Response:
        account = await require(request)
        return _reply(await svc.preview(account, int(request.match_info["id"])))

    @_errors
    async def create(request: web.Request) -> web.Response:
        account = await write(request)
        b = await _body(request)
        async with sm() as session:
            if (await scope_of(await session.connection(), account)).is_dealer:
                raise repo.Forbidden("dealer contacts do not plan calls")
        res = await svc.create(_int(b.get("customer_id"), "customer_id", True), _str(b.get("reason"), "reason", True) or "",  # type: ignore[arg-type]
                               due_at=_time(b.get("due_at"), "due_at"), due_until=_time(b.get("due_until"), "due_until"),
                               owner_id=_int(b.get("owner_id"), "owner_id"), skill=_str(b.get("skill"), "skill"),
                               detail=_str(b.get("detail"), "detail") or "", source_key=None)
        return _reply({"followup_id": res.followup_id, "created": res.created, "merged": not res.created}, 201)

    @_errors
    async def dial(request: web.Request) -> web.Response:
        account = await write(request)
        b = await _body(request) if request.body_exists else {}
        return _reply(await svc.dial(account, int(request.match_info["id"]), _str(b.get("phone"), "phone")), 202)

    @_errors
    async def outcome(request: web.Request) -> web.Response:
        account = await write(request)
        b = await _body(request)
        opt_out = b.get("opt_out", False)
        if not isinstance(opt_out, bool):
            raise _error(web.HTTPBadRequest, "opt_out: expected true or false")
        return _reply(await svc.record_outcome(
            account, int(request.match_info["id"]), _str(b.get("outcome"), "outcome", True) or "",
            notes=_str(b.get("notes"), "notes") or "", new_need=_str(b.get("new_need"), "new_need"),
            callback_at=_time(b.get("callback_at"), "callback_at"), opt_out=opt_out))

    @_errors
    async def event(request: web.Request) -> web.Response:
        await write(request, *SUPERVISORS)
        b = await _body(request)
        ev = BusinessEvent(_str(b.get("kind"), "kind", True) or "", _int(b.get("customer_id"), "customer_id", True) or 0,
                           _str(b.get("key"), "key", True) or "", svc.now(), _str(b.get("detail"), "detail") or "")
        made = await svc.handle_event(ev)
        return _reply({"followups": [{"followup_id": r.followup_id, "created": r.created, "duplicate": r.duplicate}
                                     for r in made]})

    async def _leads_for(account: Any, dealer_q: str | None) -> tuple[str | None, list[dict[str, Any]]]:
        async with sm() as session:
            conn = await session.connection()
            scope = await scope_of(conn, account)
            if scope.is_dealer:
                dealer_q = scope.dealer
            elif account.role not in SUPERVISORS:
                raise repo.Forbidden("leads are for dealers and supervisors")
            return dealer_q, await repo.list_leads(conn, dealer=dealer_q)

    @_errors
    async def leads(request: web.Request) -> web.Response:
        account = await require(request)
        _, found = await _leads_for(account, request.query.get("dealer") or None)
        return _reply({"leads": found})

    @_errors
    async def update_lead(request: web.Request) -> web.Response:
        account = await write(request)
        b = await _body(request)
        lead_id = int(request.match_info["id"])
        async with sm() as session, session.begin():
            conn = await session.connection()
            [lead] = await repo.list_leads(conn, lead_id=lead_id) or [None]
            if lead is None:
                raise repo.NotFound(f"no lead {lead_id}")
            scope = await scope_of(conn, account)
            if not scope.is_dealer and account.role not in SUPERVISORS:
                raise repo.Forbidden("only the lead's dealer or a supervisor may update it")
            if scope.is_dealer and lead["dealer"] != scope.dealer:
                raise repo.Forbidden("only the lead's dealer or a supervisor may update it")
            await scope.check(conn, lead["customer_id"])
            await repo.update_lead(conn, lead_id, status=_str(b.get("status"), "status", True) or "",
                                   result=_str(b.get("result"), "result") or "", now=svc.now())
            [lead] = await repo.list_leads(conn, lead_id=lead_id)
        return _reply(lead)

    @_errors
    async def dnc_list(request: web.Request) -> web.Response:
        await require(request, *SUPERVISORS)
        async with sm() as session:
            return _reply({"entries": await repo.list_dnc(await session.connection())})

    @_errors
    async def dnc_add(request: web.Request) -> web.Response:
        account = await write(request)
        b = await _body(request)
        e164 = _str(b.get("e164"), "e164")
        if e164 is not None:
            from cti.customers.callerid import normalize
            e164 = normalize(e164).e164
            if e164 is None:
                raise _error(web.HTTPBadRequest, "e164: not a phone number")
        customer_id = _int(b.get("customer_id"), "customer_id")
        async with sm() as session, session.begin():
            conn = await session.connection()
            await _may_record_dnc(conn, account, customer_id, e164)
            dnc_id = await repo.add_dnc(conn, customer_id=customer_id,
                                        e164=e164, reason=_str(b.get("reason"), "reason") or "",
                                        recorded_by=account.username, recorded_by_id=account.id, now=svc.now())
        return _reply({"id": dnc_id}, 201)

    @_errors
    async def handover_note(request: web.Request) -> web.Response:
        account = await write(request)
        b = await _body(request)
        team = _str(b.get("team"), "team", True) or ""
        followup_id = _int(b.get("followup_id"), "followup_id")
        async with sm() as session, session.begin():
            conn = await session.connection()
            await _may_write_handover(conn, account, team, followup_id)
            note_id = await add_handover_note(conn, team=team, author_id=account.id,
                                              body=_str(b.get("body"), "body", True) or "",
                                              followup_id=followup_id, now=svc.now())
        return _reply({"id": note_id}, 201)

    @_errors
    async def handover_report(request: web.Request) -> web.StreamResponse:
        await require(request, *SUPERVISORS)
        q = request.query
        team = _str(q.get("team"), "team", True) or ""
        try:
            day = date.fromisoformat(q["day"]) if q.get("day") else svc.now().astimezone(ZoneInfo(zone)).date()
        except ValueError:
            raise _error(web.HTTPBadRequest, "day: expected YYYY-MM-DD") from None
        async with sm() as session:
            report = await handover(await session.connection(), team, day, zone=zone)
        if q.get("format") == "csv":
            return web.Response(text=handover_csv(report), content_type="text/csv", charset="utf-8", headers={
                "Content-Disposition": f'attachment; filename="handover-{day.isoformat()}.csv"'})
        return _reply(report)

    @_errors
    async def frequency(request: web.Request) -> web.Response:
        await require(request, *SUPERVISORS)
        caps = list(dict.fromkeys([*svc.policy.caps, *(c for cs in svc.policy.caps_by_reason.values() for c in cs)]))
        async with sm() as session:
            return _reply(await contact_frequency(await session.connection(), caps,
                                                  since=_time(request.query.get("since"), "since"),
                                                  until=_time(request.query.get("until"), "until")))

    @_errors
    async def dealer_page(request: web.Request) -> web.Response:
        account = await require(request)
        dealer, found = await _leads_for(account, request.query.get("dealer") or None)
        e = html.escape
        rows = "".join(
            f"<tr data-lead='{lead['id']}'><td>{e(lead['created_at'].strftime('%Y-%m-%d'))}</td><td>{e(lead['customer'])}</td>"
            f"<td>{e(lead['need'])}</td><td class='status'>{e(lead['status'])}</td><td>{e(lead['result'])}</td>"
            f"<td>{e(_credits_text(lead['credits']))}</td></tr>" for lead in found)
        title = f"Leads of {dealer}" if dealer else "Leads of every dealer"
        page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title></head><body>"
                f"<h1>{e(title)}</h1><table id='leads'><thead><tr><th>Date</th><th>Customer</th><th>Need</th>"
                f"<th>Status</th><th>Result</th><th>Credit</th></tr></thead><tbody>{rows}</tbody></table></body></html>")
        return web.Response(text=page, content_type="text/html", charset="utf-8",
                            headers={"Content-Security-Policy": "default-src 'none'"})

    async def console_page(request: web.Request) -> web.StreamResponse:
        await require(request)
        return web.Response(text=(STATIC / "console.html").read_text(encoding="utf-8"), content_type="text/html",
                            charset="utf-8", headers={"Content-Security-Policy": CONSOLE_CSP})

    async def console_js(request: web.Request) -> web.StreamResponse:
        return web.Response(text=(STATIC / "console.js").read_text(encoding="utf-8"),
                            content_type="application/javascript", charset="utf-8")

    return [
        web.get("/outbound/console", console_page),
        web.get("/outbound/static/console.js", console_js),
        web.get("/api/outbound/next", next_followups),
        web.post("/api/outbound/followups", create),
        web.get("/api/outbound/followups/{id:\\d+}", show),
        web.post("/api/outbound/followups/{id:\\d+}/dial", dial),
        web.post("/api/outbound/attempts/{id:\\d+}/outcome", outcome),
        web.post("/api/outbound/events", event),
        web.get("/api/outbound/leads", leads),
        web.post("/api/outbound/leads/{id:\\d+}", update_lead),
        web.get("/api/outbound/dnc", dnc_list),
        web.post("/api/outbound/dnc", dnc_add),
        web.post("/api/outbound/handover", handover_note),
        web.get("/api/outbound/reports/handover", handover_report),
        web.get("/api/outbound/reports/frequency", frequency),
        web.get("/outbound/dealer", dealer_page),
    ]


def add_routes(app: web.Application, sessionmaker: async_sessionmaker, ami: Any, require: Require, *,
               require_write: Require | None = None, bus: Any = None, service: OutboundService | None = None,
               scheduler: bool = True, zone: str = "Asia/Shanghai", **service_kw: Any) -> OutboundService:
    """Mount the endpoints; with ``bus`` (and ``scheduler``) the app also runs the OutboundScheduler."""
    svc = service or OutboundService(sessionmaker, ami, bus, **service_kw)
    app[SERVICE_KEY] = svc
    app.router.add_routes(routes(svc, require, require_write, zone=zone))
    if bus is not None and scheduler:
        async def run_scheduler(_app: web.Application) -> AsyncIterator[None]:
            sched = OutboundScheduler(svc, bus)
            await sched.start()
            yield
            await sched.stop()

        app.cleanup_ctx.append(run_scheduler)
    return svc
