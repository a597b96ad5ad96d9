"""Tickets, org chart and knowledge base in the console: their REST routes behind the console's gate,
one endpoint that links a ticket to the call on screen, and the websocket notifications.

``add_backoffice_routes(app, daemon, gate, writer, hub)`` mounts

* :mod:`cti.tickets.http` (``/api/tickets``, ``/api/org``) and :mod:`cti.kb.http` (``/api/kb/...``): reads
  through ``gate.require``, writes through ``writer`` (origin-checked, CSRF);
* ``POST /api/tickets/from-call {server?, uniqueid, customer_id, description, category?, product_line?,
  owner_id?}`` -> 201 ticket linked to that call's ``calls`` row (the same ownership rule as the wrap-up:
  an agent only for a call popped to them or theirs; a row is created if the recorder has not written it yet);
* the :class:`~cti.web.notifications.ConsoleNotifications` task (started and stopped with the app).
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Awaitable, Callable

import structlog
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cti.db.tables import calls
from cti.kb import http as kb_http
from cti.tickets import http as tickets_http
from cti.tickets.httpjson import actor_of, body, domain_errors, error, opt_int, opt_str, reply
from cti.tickets.service import TicketService
from cti.tickets.sla import Clock, system_clock, utc
from cti.web.auth import SUPERVISORS, Gate
from cti.web.notifications import ConsoleNotifications

log = structlog.get_logger(__name__)

NOTIFICATIONS = web.AppKey("console_notifications", ConsoleNotifications)


def add_backoffice_routes(app: web.Application, daemon: Any, gate: Gate, writer: Callable[..., Awaitable[Any]],
                          hub: Any, *, clock: Clock = system_clock) -> ConsoleNotifications:
    """Mount tickets + org + KB + from-call and the notifications (see the module docstring)."""
    policy = daemon.settings.tickets.policy()
    sm = daemon.sessionmaker
    tickets_http.add_routes(app, sm, gate.require, writer, bus=daemon.bus, clock=clock, policy=policy)
    kb_http.add_routes(app, sm, gate.require, writer, bus=daemon.bus, clock=clock, policy=policy)
    svc = TicketService(sm, daemon.bus, clock, policy)
    default_server = daemon.settings.ami.server

    @domain_errors
    async def from_call(request: web.Request) -> web.Response:
        account = await writer(request, "agent", *SUPERVISORS)
        b = await body(request)
        uniqueid = (opt_str(b.get("uniqueid"), "uniqueid") or "")[:64]
        server = (opt_str(b.get("server"), "server") or default_server)[:64]
        customer_id = opt_int(b.get("customer_id"), "customer_id")
        if not uniqueid:
            raise error(web.HTTPBadRequest, "uniqueid: required")
        if customer_id is None:
            raise error(web.HTTPBadRequest, "customer_id: required")
        async with sm() as session, session.begin():
            conn = await session.connection()
            row = (await conn.execute(select(calls.c.id, calls.c.agent_interface, calls.c.agent_id).where(
                calls.c.server == server, calls.c.uniqueid == uniqueid))).first()
            if account.role == "agent":
                mine = hub.was_popped(account.interface, server, uniqueid) or (
                    row is not None and (row.agent_id == account.id or
                                         (account.interface and row.agent_interface == account.interface)))
                if not mine:
                    raise error(web.HTTPForbidden, "not your call", "not_your_call")
            if row is None:  # the recorder writes it within a second; the ticket must not wait for it
                ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(calls).values(
                    server=server, uniqueid=uniqueid, started_at=utc(clock()), customer_id=customer_id,
                    agent_id=account.id if account.role == "agent" else None,
                    agent_interface=account.interface if account.role == "agent" else None)
                await conn.execute(ins.on_conflict_do_nothing(index_elements=[calls.c.server, calls.c.uniqueid]))
            call_id = (await conn.execute(select(calls.c.id).where(
                calls.c.server == server, calls.c.uniqueid == uniqueid))).scalar_one()
        ticket = await svc.create(actor_of(account), customer_id=customer_id,
                                  description=opt_str(b.get("description"), "description") or "",
                                  category=opt_str(b.get("category"), "category") or "complaint",
                                  product_line=opt_str(b.get("product_line"), "product_line"),
                                  call_id=call_id, owner_id=opt_int(b.get("owner_id"), "owner_id"),
                                  call_verified=True)  # checked above: popped to this agent or theirs
        log.info("ticket.from_call", uniqueid=uniqueid, ticket_id=ticket["id"], agent=account.username)
        return reply(ticket, status=201)

    app.router.add_post("/api/tickets/from-call", from_call)

    notifications = ConsoleNotifications(daemon.bus, hub)
    app[NOTIFICATIONS] = notifications

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await notifications.start()
        yield
        await notifications.stop()

    app.cleanup_ctx.append(lifecycle)
    return notifications
