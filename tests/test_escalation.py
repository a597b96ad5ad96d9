"""Escalation over simulated time: up the chain, restart safety, no double escalation (SQLite + PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from cti.bus import InMemoryBus
from cti.db.engine import create_engine, sessionmaker
from cti.db.tables import notifications, ticket_history, tickets
from cti.tickets.repository import Actor
from cti.tickets.scheduler import TicketScheduler
from cti.tickets.service import TicketService
from cti.tickets.sla import SlaPolicy
from cti.tickets.testing import build_demo_org

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(hours=24)
SEC = timedelta(seconds=1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def world(engine):
    sm = sessionmaker(engine)
    async with sm() as s, s.begin():
        org = await build_demo_org(await s.connection(), T0)
    clock = Clock(T0)
    bus = InMemoryBus()
    return sm, org, clock, bus, TicketService(sm, bus, clock, SlaPolicy())


async def _create(svc, org, n=1, **kw):
    out = []
    for i in range(n):
        out.append(await svc.create(Actor(org.agent, "agent"), customer_id=org.customer, description=f"c{i}",
                                    product_line="appliances", **kw))
    return out


async def test_no_escalation_before_the_deadline(world):
    sm, org, clock, bus, svc = world
    [t] = await _create(svc, org)
    clock.now = T0 + DAY - SEC
    report = await TicketScheduler(sm, bus, clock, None).run_once()
    assert report.tickets.escalated == 0
    assert (await svc.get(t["id"]))["owner_id"] == org.agent


async def test_escalates_up_the_chain_to_the_top_then_reminds(world):
    sm, org, clock, bus, svc = world
    sub = bus.subscribe("ticket.escalated", "ticket.sla_breached")
    [t] = await _create(svc, org)
    scheduler = TicketScheduler(sm, bus, clock, None)
    expected = [(org.lead, 1), (org.head, 2), (org.director, 3)]
    for step, (owner, level) in enumerate(expected, start=1):
        clock.now = T0 + step * DAY + SEC
        report = await scheduler.run_once()
        assert report.tickets.escalated == 1
        got = await svc.get(t["id"])
        assert (got["owner_id"], got["escalation_level"]) == (owner, level)
        assert got["sla_deadline"] == (clock.now + DAY).isoformat()  # reset for the new owner
        msg = sub.get_nowait()
        assert msg.topic == "ticket.escalated" and msg.payload["owner_id"] == owner
        assert msg.payload["ticket_id"] == t["id"] and msg.payload["escalation_level"] == level
    # at the top: the owner stays, the deadline restarts, a reminder goes out
    clock.now = clock.now + DAY + SEC
    report = await scheduler.run_once()
    assert (report.tickets.escalated, report.tickets.reminded) == (0, 1)
    got = await svc.get(t["id"])
    assert (got["owner_id"], got["escalation_level"]) == (org.director, 3)
    assert sub.get_nowait().topic == "ticket.sla_breached"
    actions = [(h["action"], h["from_owner_id"], h["to_owner_id"], h["actor"]) for h in got["history"]]
    assert actions == [("created", None, org.agent, "agent"), ("escalated", org.agent, org.lead, "system"),
                       ("escalated", org.lead, org.head, "system"), ("escalated", org.head, org.director, "system"),
                       ("reminded", org.director, org.director, "system")]
    # the escalated view shows it to a supervisor
    view = await svc.view(Actor(org.supervisor, "supervisor", "supervisor"), "escalated")
    assert [v["id"] for v in view] == [t["id"]]


async def test_answered_resolved_tickets_do_not_escalate_reopened_ones_do(world):
    sm, org, clock, bus, svc = world
    a, b, c = await _create(svc, org, 3)
    await svc.answer(Actor(org.agent, "agent"), a["id"], "answered in time")
    await svc.resolve(Actor(org.agent, "agent"), b["id"])
    clock.now = T0 + 2 * DAY
    await svc.reopen(Actor(org.agent, "agent"), a["id"], "not satisfied")
    report = await TicketScheduler(sm, bus, clock, None).run_once()
    assert report.tickets.escalated == 1  # only c; a has a fresh SLA period
    assert (await svc.get(c["id"]))["owner_id"] == org.lead
    clock.now = T0 + 3 * DAY + SEC
    await TicketScheduler(sm, bus, clock, None).run_once()
    assert (await svc.get(a["id"]))["owner_id"] == org.lead
    assert (await svc.get(b["id"]))["owner_id"] == org.agent


async def test_same_deadline_never_escalates_twice(world):
    sm, org, clock, bus, svc = world
    tickets_ = await _create(svc, org, 3)
    clock.now = T0 + DAY + SEC
    scheduler = TicketScheduler(sm, bus, clock, None)
    assert (await scheduler.run_once()).tickets.escalated == 3
    assert (await scheduler.run_once()).tickets.escalated == 0
    for t in tickets_:
        assert (await svc.get(t["id"]))["owner_id"] == org.lead


async def test_survives_a_restart_deadlines_come_from_the_database(db_url, engine):
    sm = sessionmaker(engine)
    async with sm() as s, s.begin():
        org = await build_demo_org(await s.connection(), T0)
    clock = Clock(T0)
    svc = TicketService(sm, None, clock)
    [t] = await _create(svc, org)
    first = TicketScheduler(sm, None, clock, None)
    await first.start()
    await first.stop()  # the daemon stops before the deadline
    # a new process: new engine, new scheduler, later clock
    engine2 = create_engine(db_url)
    try:
        later = Clock(T0 + DAY + SEC)
        report = await TicketScheduler(sessionmaker(engine2), None, later, None).run_once()
        assert report.tickets.escalated == 1
        async with sessionmaker(engine2)() as s:
            assert (await s.execute(select(tickets.c.owner_id).where(tickets.c.id == t["id"]))).scalar() == org.lead
    finally:
        await engine2.dispose()


async def test_two_schedulers_at_once_escalate_each_ticket_exactly_once(db_url, engine):
    sm = sessionmaker(engine)
    async with sm() as s, s.begin():
        org = await build_demo_org(await s.connection(), T0)
    clock = Clock(T0)
    svc = TicketService(sm, None, clock)
    n = 120
    created = await _create(svc, org, n)
    clock.now = T0 + DAY + SEC
    engine2 = create_engine(db_url)
    try:
        a = TicketScheduler(sm, InMemoryBus(), clock, None)
        b = TicketScheduler(sessionmaker(engine2), InMemoryBus(), clock, None)
        ra, rb = await asyncio.gather(a.run_once(), b.run_once())
    finally:
        await engine2.dispose()
    assert ra.tickets.escalated + rb.tickets.escalated == n
    async with sm() as s:
        per_ticket = dict((await s.execute(
            select(ticket_history.c.ticket_id, func.count()).where(ticket_history.c.action == "escalated")
            .group_by(ticket_history.c.ticket_id))).all())
        owners = set((await s.execute(select(tickets.c.owner_id))).scalars())
        levels = set((await s.execute(select(tickets.c.escalation_level))).scalars())
        # one e-mail per escalation to the lead (dedupe key): n, plus the n creation e-mails to the agent
        mails = dict((await s.execute(select(notifications.c.recipient, func.count())
                                      .group_by(notifications.c.recipient))).all())
    assert per_ticket == {t["id"]: 1 for t in created}
    assert owners == {org.lead} and levels == {1}
    assert mails == {"lead@example.com": n, "agent@example.com": n}


async def test_overdue_view_and_large_overdue_backlog_in_pages(world):
    """More overdue tickets than a page: all escalate in one pass (keyset pages)."""
    sm, org, clock, bus, svc = world
    from cti.tickets.escalation import TICKETS, escalate_overdue

    created = await _create(svc, org, 7)
    clock.now = T0 + DAY + SEC
    report = await escalate_overdue(sm, TICKETS, SlaPolicy(), clock.now, page=3)
    assert report.escalated == 7 and len(report.events) == 7
    assert {(await svc.get(t["id"]))["owner_id"] for t in created} == {org.lead}


async def test_scheduler_loop_runs_passes_and_stops_cleanly(world):
    sm, org, clock, bus, svc = world
    await _create(svc, org)
    clock.now = T0 + DAY + SEC
    sub = bus.subscribe("ticket.escalated")
    scheduler = TicketScheduler(sm, bus, clock, None, interval_s=3600)
    await scheduler.start()
    try:
        msg = await asyncio.wait_for(sub.get(), 20)
    finally:
        await scheduler.stop()
    assert msg.payload["owner_id"] == org.lead
