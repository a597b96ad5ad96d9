"""Tickets: SLA deadlines, the state machine, history, permissions (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from cti.bus import InMemoryBus
from cti.db.engine import sessionmaker
from cti.db.tables import ticket_history, tickets
from cti.tickets.repository import Actor, TicketError, TicketForbidden
from cti.tickets.service import TicketService
from cti.tickets.sla import SlaPolicy
from cti.tickets.states import IllegalTransition, allowed_actions, next_status
from cti.tickets.testing import build_demo_org

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


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
    svc = TicketService(sm, bus, clock, SlaPolicy(per_category={"billing": 48}))
    return sm, org, clock, bus, svc


def actor(org, name: str, role: str = "agent") -> Actor:
    return Actor(getattr(org, name), name, role)


@pytest.mark.parametrize("status,action,expected", [
    ("open", "answer", "answered"), ("reopened", "answer", "answered"), ("open", "resolve", "resolved"),
    ("answered", "resolve", "resolved"), ("answered", "close", "closed"), ("resolved", "close", "closed"),
    ("answered", "reopen", "reopened"), ("resolved", "reopen", "reopened"), ("closed", "reopen", "reopened"),
])
def test_legal_transitions(status, action, expected):
    assert next_status(status, action) == expected


@pytest.mark.parametrize("status,action", [
    ("open", "close"), ("open", "reopen"), ("closed", "answer"), ("closed", "resolve"), ("resolved", "answer"),
    ("reopened", "reopen"), ("answered", "answer"), ("open", "delete"),
])
def test_illegal_transitions_are_refused_with_a_clear_message(status, action):
    with pytest.raises(IllegalTransition) as exc:
        next_status(status, action)
    assert action in str(exc.value)
    if action != "delete":
        assert f"is {status}" in str(exc.value)


def test_allowed_actions_follow_the_table():
    assert allowed_actions("open") == ["answer", "resolve"]
    assert allowed_actions("closed") == ["reopen"]


def test_sla_deadline_default_and_per_category():
    policy = SlaPolicy(per_category={"billing": 48, "safety": 4})
    assert policy.deadline("complaint", T0) == T0 + timedelta(hours=24)
    assert policy.deadline("billing", T0) == T0 + timedelta(hours=48)
    assert policy.deadline("safety", T0.timestamp()) == T0 + timedelta(hours=4)
    assert SlaPolicy.from_mapping({"default_hours": 12, "categories": {"x": 1}}).deadline("y", T0) == T0 + timedelta(hours=12)
    with pytest.raises(ValueError, match="per_category.bad"):
        SlaPolicy(per_category={"bad": 0})


async def test_create_links_call_and_customer_sets_deadline_and_owner(world):
    sm, org, clock, bus, svc = world
    sub = bus.subscribe("ticket.")
    t = await svc.create(actor(org, "agent"), customer_id=org.customer, description="冰箱不制冷, 第三次来电",
                         product_line="appliances")
    assert t["status"] == "open" and t["category"] == "complaint"
    assert t["owner_id"] == org.agent  # the front line of the product line
    assert t["sla_deadline"] == (T0 + timedelta(hours=24)).isoformat()
    billing = await svc.create(actor(org, "agent"), customer_id=org.customer, description="double charge",
                               category="Billing", owner_id=org.lead)
    assert billing["sla_deadline"] == (T0 + timedelta(hours=48)).isoformat() and billing["owner_id"] == org.lead
    msg = sub.get_nowait()
    assert msg.topic == "ticket.created" and msg.payload["owner_id"] == org.agent
    detail = await svc.get(t["id"])
    assert [h["action"] for h in detail["history"]] == ["created"]
    assert detail["history"][0]["actor"] == "agent"


async def test_create_refuses_bad_input_clearly(world):
    sm, org, clock, bus, svc = world
    with pytest.raises(TicketError, match="no customer 999"):
        await svc.create(actor(org, "agent"), customer_id=999, description="x")
    with pytest.raises(TicketError, match="description"):
        await svc.create(actor(org, "agent"), customer_id=org.customer, description="  ")
    with pytest.raises(TicketError, match="product_line"):
        await svc.create(actor(org, "agent"), customer_id=org.customer, description="x", product_line="cars")
    with pytest.raises(TicketError, match="no call 77"):
        await svc.create(actor(org, "agent"), customer_id=org.customer, description="x", call_id=77)
    with pytest.raises(TicketError, match="owner: no agent"):
        await svc.create(actor(org, "agent"), customer_id=org.customer, description="x", owner_id=9999)


async def test_full_lifecycle_with_history_of_who_when_what(world):
    sm, org, clock, bus, svc = world
    t = await svc.create(actor(org, "agent"), customer_id=org.customer, description="washer leaks",
                         product_line="appliances")
    clock.now = T0 + timedelta(hours=2)
    t = await svc.answer(actor(org, "agent"), t["id"], "a technician comes Tuesday")
    assert t["status"] == "answered" and t["overdue"] is False
    clock.now = T0 + timedelta(hours=30)
    t = await svc.reopen(actor(org, "supervisor", "supervisor"), t["id"], "customer: nobody came")
    assert t["status"] == "reopened"
    assert t["sla_deadline"] == (T0 + timedelta(hours=54)).isoformat()  # a fresh SLA period
    t = await svc.resolve(actor(org, "lead"), t["id"], "technician visited, fixed")  # the owner's manager may
    t = await svc.close(actor(org, "agent"), t["id"])
    assert t["status"] == "closed"
    hist = (await svc.get(t["id"]))["history"]
    assert [(h["action"], h["from_status"], h["to_status"], h["actor"]) for h in hist] == [
        ("created", None, "open", "agent"),
        ("answered", "open", "answered", "agent"),
        ("reopened", "answered", "reopened", "supervisor"),
        ("resolved", "reopened", "resolved", "lead"),
        ("closed", "resolved", "closed", "agent"),
    ]
    assert hist[1]["detail"] == "a technician comes Tuesday"
    assert hist[2]["at"] == (T0 + timedelta(hours=30)).isoformat()


async def test_illegal_transition_on_a_stored_ticket_changes_nothing(world):
    sm, org, clock, bus, svc = world
    t = await svc.create(actor(org, "agent"), customer_id=org.customer, description="x", product_line="appliances")
    with pytest.raises(IllegalTransition, match="cannot close a ticket that is open"):
        await svc.close(actor(org, "agent"), t["id"])
    with pytest.raises(TicketError, match="answer text is required"):
        await svc.answer(actor(org, "agent"), t["id"], "")
    detail = await svc.get(t["id"])
    assert detail["status"] == "open" and len(detail["history"]) == 1


async def test_only_owner_managers_and_supervisors_may_answer(world):
    sm, org, clock, bus, svc = world
    t = await svc.create(actor(org, "agent"), customer_id=org.customer, description="x", product_line="appliances")
    with pytest.raises(TicketForbidden):
        await svc.answer(actor(org, "engineer"), t["id"], "not mine")
    await svc.answer(actor(org, "director"), t["id"], "the director answers")  # top of the owner's chain


async def test_history_is_immutable_in_the_database(world, engine):
    sm, org, clock, bus, svc = world
    t = await svc.create(actor(org, "agent"), customer_id=org.customer, description="x", product_line="appliances")
    for stmt in (update(ticket_history).values(detail="rewritten"), delete(ticket_history)):
        with pytest.raises((IntegrityError, DBAPIError), match="immutable"):
            async with sm() as s, s.begin():
                await s.execute(stmt)
    async with sm() as s:
        assert (await s.execute(select(ticket_history.c.detail))).scalars().all() == ["x"]
    # the history goes only with its ticket
    async with sm() as s, s.begin():
        await s.execute(delete(tickets).where(tickets.c.id == t["id"]))
    async with sm() as s:
        assert (await s.execute(select(ticket_history))).all() == []


async def test_views_mine_team_overdue_escalated(world):
    sm, org, clock, bus, svc = world
    a = await svc.create(actor(org, "agent"), customer_id=org.customer, description="a", product_line="appliances")
    b = await svc.create(actor(org, "agent"), customer_id=org.customer, description="b", owner_id=org.lead)
    clock.now = T0 + timedelta(hours=25)
    assert [t["id"] for t in await svc.view(actor(org, "agent"), "mine")] == [a["id"]]
    assert {t["id"] for t in await svc.view(actor(org, "head"), "team")} == {a["id"], b["id"]}
    assert [t["id"] for t in await svc.view(actor(org, "lead"), "team")] == [a["id"]]
    overdue = await svc.view(actor(org, "supervisor", "supervisor"), "overdue")
    assert {t["id"] for t in overdue} == {a["id"], b["id"]} and all(t["overdue"] for t in overdue)
    assert await svc.view(actor(org, "engineer"), "overdue") == []  # not theirs, not their team's
    assert await svc.view(actor(org, "supervisor", "supervisor"), "escalated") == []


async def test_open_complaint_meaning_for_routing_is_kept(world):
    """FastAGI's open complaint: category 'complaint' in open/answered/reopened."""
    sm, org, clock, bus, svc = world
    t = await svc.create(actor(org, "agent"), customer_id=org.customer, description="x", product_line="appliances")
    async with sm() as s:
        row = (await s.execute(select(tickets.c.category, tickets.c.status).where(tickets.c.id == t["id"]))).one()
    assert tuple(row) == ("complaint", "open")
