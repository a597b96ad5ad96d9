"""Escalation notifications delivered through the outbox to a loopback SMTP server and webhook."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP
from sqlalchemy import select

from cti.bus import InMemoryBus
from cti.db.engine import sessionmaker
from cti.db.tables import notifications
from cti.tickets.notify import Notifier, SmtpSettings
from cti.tickets.outbox import retry_delay
from cti.tickets.repository import Actor
from cti.tickets.scheduler import TicketScheduler
from cti.tickets.service import TicketService
from cti.tickets.testing import build_demo_org

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(hours=24)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content.decode("utf-8", "replace")))
        return "250 OK"


@pytest.fixture
async def smtp():
    """A real SMTP server (aiosmtpd) on a loopback port, in the test's event loop."""
    box = Mailbox()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(box), "127.0.0.1", 0)
    try:
        yield box, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def webhook():
    received: list[dict] = []
    failures = {"left": 0}

    async def hook(request: web.Request) -> web.Response:
        if failures["left"] > 0:
            failures["left"] -= 1
            return web.Response(status=503)
        received.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook", received, failures
    finally:
        await runner.cleanup()


async def test_escalation_mails_the_new_owner_and_posts_the_webhook(engine, smtp, webhook):
    box, smtp_port = smtp
    url, received, _ = webhook
    sm = sessionmaker(engine)
    async with sm() as s, s.begin():
        org = await build_demo_org(await s.connection(), T0, webhook_url=url)
    clock = Clock(T0)
    bus = InMemoryBus()
    svc = TicketService(sm, bus, clock)
    notifier = Notifier(SmtpSettings(host="127.0.0.1", port=smtp_port, sender="cti@example.com"))
    scheduler = TicketScheduler(sm, bus, clock, notifier)
    try:
        t = await svc.create(Actor(org.agent, "agent"), customer_id=org.customer, description="空调漏水\r\nBcc: x@evil",
                             product_line="appliances")
        await scheduler.run_once()  # the creation notice to the owner
        clock.now = T0 + DAY + timedelta(seconds=1)
        report = await scheduler.run_once()
        assert report.tickets.escalated == 1 and report.delivery.sent == 2
    finally:
        await scheduler.stop()
    rcpts = [m[1] for m in box.messages]
    assert rcpts == [["agent@example.com"], ["lead@example.com"]]
    mail = box.messages[1][2]
    assert f"Subject: Ticket #{t['id']} escalated to you" in mail
    assert "ticket.escalated" in mail
    assert "Bcc:" not in mail.split("\n\n", 1)[0]  # caller-supplied text never reaches the headers
    assert [r["event"] for r in received] == ["ticket.created", "ticket.escalated"]
    assert received[1]["ticket_id"] == t["id"] and received[1]["owner_id"] == org.lead
    assert received[1]["from_owner_id"] == org.agent


async def test_failed_deliveries_are_retried_with_backoff_then_sent_once(engine, webhook):
    url, received, failures = webhook
    sm = sessionmaker(engine)
    async with sm() as s, s.begin():
        org = await build_demo_org(await s.connection(), T0, email_domain=None, webhook_url=url)
    clock = Clock(T0)
    svc = TicketService(sm, None, clock)
    scheduler = TicketScheduler(sm, None, clock, Notifier())
    failures["left"] = 2
    try:
        await svc.create(Actor(org.agent, "agent"), customer_id=org.customer, description="x", product_line="appliances")
        r1 = await scheduler.run_once()
        assert (r1.delivery.sent, r1.delivery.retried) == (0, 1)
        r_early = await scheduler.run_once()  # not due yet: nothing is sent
        assert r_early.delivery.sent == r_early.delivery.retried == 0
        clock.now += retry_delay(1)
        assert (await scheduler.run_once()).delivery.retried == 1
        clock.now += retry_delay(2)
        assert (await scheduler.run_once()).delivery.sent == 1
        clock.now += timedelta(hours=1)
        assert (await scheduler.run_once()).delivery.sent == 0
    finally:
        await scheduler.stop()
    assert len(received) == 1
    async with sm() as s:
        row = (await s.execute(select(notifications))).one()
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)


async def test_undeliverable_notifications_are_given_up_after_max_attempts(engine):
    sm = sessionmaker(engine)
    async with sm() as s, s.begin():
        org = await build_demo_org(await s.connection(), T0, webhook_url=None)
    clock = Clock(T0)
    svc = TicketService(sm, None, clock)
    # nothing listens on this port: every attempt fails (connection refused)
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    scheduler = TicketScheduler(sm, None, clock, Notifier(SmtpSettings(host="127.0.0.1", port=dead_port, timeout_s=2)))
    try:
        await svc.create(Actor(org.agent, "agent"), customer_id=org.customer, description="x", product_line="appliances")
        for _ in range(8):
            await scheduler.run_once()
            clock.now += timedelta(hours=2)
    finally:
        await scheduler.stop()
    async with sm() as s:
        row = (await s.execute(select(notifications))).one()
    assert row.status == "failed" and row.attempts == 8 and row.last_error


async def test_two_schedulers_deliver_each_notification_once(db_url, engine, webhook):
    from cti.db.engine import create_engine

    url, received, _ = webhook
    sm = sessionmaker(engine)
    async with sm() as s, s.begin():
        org = await build_demo_org(await s.connection(), T0, email_domain=None, webhook_url=url)
    clock = Clock(T0)
    svc = TicketService(sm, None, clock)
    for i in range(30):
        await svc.create(Actor(org.agent, "agent"), customer_id=org.customer, description=f"c{i}",
                         product_line="appliances")
    clock.now = T0 + DAY + timedelta(seconds=1)
    engine2 = create_engine(db_url)
    a = TicketScheduler(sm, None, clock, Notifier())
    b = TicketScheduler(sessionmaker(engine2), None, clock, Notifier())
    try:
        ra, rb = await asyncio.gather(a.run_once(), b.run_once())
        rest = await a.run_once()
    finally:
        await a.stop()
        await b.stop()
        await engine2.dispose()
    assert ra.tickets.escalated + rb.tickets.escalated == 30
    events = [(r["event"], r["ticket_id"]) for r in received]
    assert len(events) == len(set(events)) == 60  # 30 created + 30 escalated, none twice
    assert ra.delivery.sent + rb.delivery.sent + rest.delivery.sent == 60
