"""REST endpoints for tickets and the org chart, mounted by cti/web.

``add_routes(app, sessionmaker, require, require_write=None, bus=bus, clock=clock, policy=policy)``
(or :func:`routes` for the list). Every endpoint needs a logged-in account; JSON in and out;
errors are ``{"error": "..."}`` with 400/403/404/409.

=======  ==================================  =============================================================
GET      /api/tickets                        ?view=mine|team|overdue|escalated|all &customer_id= &status=
                                             &limit= &offset= -> {tickets: [ticket]}
POST     /api/tickets                        {customer_id, description, category?, product_line?, call_id?,
                                             owner_id?} -> 201 ticket (owner: the product line's front line)
GET      /api/tickets/{id}                   -> ticket + {history: [{at, actor, action, ...}]}
POST     /api/tickets/{id}/answer            {text} (owner, owner's managers, supervisors)
POST     /api/tickets/{id}/resolve           {note?}
POST     /api/tickets/{id}/close             {note?}
POST     /api/tickets/{id}/reopen            {reason?} (any agent: the customer is unsatisfied)
POST     /api/tickets/{id}/assign            {owner_id, note?}
GET      /api/org                            -> {people: [person]}: agents and dealer contacts get
                                             {agent_id, username, display_name, role, active, engineer};
                                             supervisors and admins the chart and e-mails, and
                                             ``webhook_set`` instead of the URL (write-only)
PUT      /api/org/{agent_id}                 {manager_id?, department?, product_line?, engineer?, email?,
                                             webhook_url?} (admin; no webhook_url key: kept)
=======  ==================================  =============================================================

A ticket: {id, customer_id, call_id, category, product_line, description, status, owner_id,
created_by, escalation_level, sla_deadline, escalated_at, created_at, updated_at (ISO 8601 UTC),
actions: [allowed actions], overdue}.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import async_sessionmaker

from cti.customers.scope import scope_of
from cti.tickets.httpjson import Require, actor_of, body, domain_errors, error, opt_int, opt_str, reply
from cti.tickets.org import load_chart, set_person
from cti.tickets.service import SUPERVISOR_ROLES, TicketService
from cti.tickets.sla import Clock, SlaPolicy, system_clock, utc
from cti.tickets.states import STATES


def routes(sessionmaker: async_sessionmaker, require: Require, require_write: Require | None = None, *,
           bus: Any = None, clock: Clock = system_clock, policy: SlaPolicy | None = None) -> list[web.RouteDef]:
    svc = TicketService(sessionmaker, bus, clock, policy)
    write = require_write or require

    @domain_errors
    async def list_tickets(request: web.Request) -> web.Response:
        account = await require(request)
        q = request.query
        statuses = [s for s in q.getall("status", []) if s]
        bad = [s for s in statuses if s not in STATES]
        if bad:
            raise error(web.HTTPBadRequest, f"status: {bad[0]!r} (expected {', '.join(STATES)})")
        found = await svc.view(actor_of(account), q.get("view", "mine"),
                               customer_id=opt_int(q.get("customer_id"), "customer_id"), statuses=statuses or None,
                               limit=opt_int(q.get("limit"), "limit") or 100, offset=opt_int(q.get("offset"), "offset") or 0)
        return reply({"tickets": found})

    @domain_errors
    async def create(request: web.Request) -> web.Response:
        account = await write(request)
        b = await body(request)
        customer_id = opt_int(b.get("customer_id"), "customer_id")
        if customer_id is None:
            raise error(web.HTTPBadRequest, "customer_id: required")
        ticket = await svc.create(actor_of(account), customer_id=customer_id,
                                  description=opt_str(b.get("description"), "description") or "",
                                  category=opt_str(b.get("category"), "category") or "complaint",
                                  product_line=opt_str(b.get("product_line"), "product_line"),
                                  call_id=opt_int(b.get("call_id"), "call_id"),
                                  owner_id=opt_int(b.get("owner_id"), "owner_id"))
        return reply(ticket, status=201)

    @domain_errors
    async def show(request: web.Request) -> web.Response:
        account = await require(request)
        return reply(await svc.get(int(request.match_info["id"]), actor_of(account)))

    def transition(action: str, field: str) -> Any:
        @domain_errors
        async def handler(request: web.Request) -> web.Response:
            account = await write(request)
            b = await body(request) if request.body_exists else {}
            text = opt_str(b.get(field), field) or ""
            return reply(await svc.act(actor_of(account), int(request.match_info["id"]), action, text))

        return handler

    @domain_errors
    async def assign(request: web.Request) -> web.Response:
        account = await write(request)
        b = await body(request)
        owner_id = opt_int(b.get("owner_id"), "owner_id")
        if owner_id is None:
            raise error(web.HTTPBadRequest, "owner_id: required")
        return reply(await svc.assign(actor_of(account), int(request.match_info["id"]), owner_id,
                                      opt_str(b.get("note"), "note") or ""))

    @domain_errors
    async def org(request: web.Request) -> web.Response:
        account = await require(request)
        async with sessionmaker() as session:
            conn = await session.connection()
            chart = await load_chart(conn)
            staff = account.role in SUPERVISOR_ROLES and not (await scope_of(conn, account)).is_dealer
        people = sorted(chart.people.values(), key=lambda p: p.agent_id)
        return reply({"people": [p.managed() if staff else p.directory() for p in people]})

    @domain_errors
    async def set_org(request: web.Request) -> web.Response:
        await write(request, "admin")
        b = await body(request)
        agent_id = int(request.match_info["agent_id"])
        engineer = b.get("engineer", False)
        if not isinstance(engineer, bool):
            raise error(web.HTTPBadRequest, "engineer: expected true or false")
        async with sessionmaker() as session, session.begin():
            conn = await session.connection()
            # write-only: a body without "webhook_url" keeps the stored one (null or "" clears it)
            webhook = (opt_str(b.get("webhook_url"), "webhook_url") if "webhook_url" in b
                       else getattr((await load_chart(conn)).get(agent_id), "webhook_url", None))
            await set_person(conn, agent_id, now=utc(clock()), manager_id=opt_int(b.get("manager_id"), "manager_id"),
                             department=opt_str(b.get("department"), "department") or "",
                             product_line=opt_str(b.get("product_line"), "product_line"), engineer=engineer,
                             email=opt_str(b.get("email"), "email"), webhook_url=webhook)
            person = (await load_chart(conn)).get(agent_id)
        return reply(person.managed() if person else {})

    return [
        web.get("/api/tickets", list_tickets),
        web.post("/api/tickets", create),
        web.get(r"/api/tickets/{id:\d+}", show),
        web.post(r"/api/tickets/{id:\d+}/answer", transition("answer", "text")),
        web.post(r"/api/tickets/{id:\d+}/resolve", transition("resolve", "note")),
        web.post(r"/api/tickets/{id:\d+}/close", transition("close", "note")),
        web.post(r"/api/tickets/{id:\d+}/reopen", transition("reopen", "reason")),
        web.post(r"/api/tickets/{id:\d+}/assign", assign),
        web.get("/api/org", org),
        web.put(r"/api/org/{agent_id:\d+}", set_org),
    ]


def add_routes(app: web.Application, sessionmaker: async_sessionmaker, require: Require,
               require_write: Require | None = None, **kw: Any) -> None:
    """Mount the ticket and org endpoints on ``app`` (see the module docstring)."""
    app.router.add_routes(routes(sessionmaker, require, require_write, **kw))
