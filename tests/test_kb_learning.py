"""The learning loop end to end: no answer found -> engineer -> answer to the agent -> approved article."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from cti.bus import InMemoryBus
from cti.db.engine import sessionmaker
from cti.db.tables import notifications
from cti.kb.questions import KnowledgeBase, QuestionError, QuestionForbidden
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


@pytest.fixture
async def world(engine):
    sm = sessionmaker(engine)
    async with sm() as s, s.begin():
        org = await build_demo_org(await s.connection(), T0)
    clock = Clock(T0)
    bus = InMemoryBus()
    return sm, org, clock, bus, KnowledgeBase(sm, bus, clock), TicketService(sm, bus, clock)


async def test_question_answer_article_loop(world):
    sm, org, clock, bus, kb, tickets = world
    agent = Actor(org.agent, "agent")
    engineer = Actor(org.engineer, "engineer")
    sub = bus.subscribe("kb.")
    assert await kb.search("变频压缩机 异响") == []  # the agent finds nothing
    ticket = await tickets.create(agent, customer_id=org.customer, description="冰箱压缩机异响", product_line="appliances")
    q = await kb.ask(agent, "变频压缩机有异响是否正常？", product_line="appliances", customer_id=org.customer,
                     ticket_id=ticket["id"])
    assert q["owner_id"] == org.engineer and q["status"] == "open"  # the product line's engineer
    msg = sub.get_nowait()
    assert msg.topic == "kb.question" and msg.payload["owner_id"] == org.engineer
    assert [x["id"] for x in await kb.questions(engineer, "mine")] == [q["id"]]

    with pytest.raises(QuestionForbidden):
        await kb.answer(Actor(org.lead, "lead"), q["id"], "not my field")
    answered = await kb.answer(engineer, q["id"], "启动后30秒内轻微嗡嗡声属正常；持续咔哒声需上门检修。")
    assert answered["status"] == "answered"
    msg = sub.get_nowait()
    assert msg.topic == "kb.answered" and msg.payload["asked_by"] == org.agent  # back to the asking agent
    history = (await tickets.get(ticket["id"]))["history"]
    assert history[-1]["action"] == "note" and "咔哒声" in history[-1]["detail"]
    with pytest.raises(QuestionError, match="only an open question"):
        await kb.answer(engineer, q["id"], "again")

    with pytest.raises(QuestionForbidden):
        await kb.approve(agent, q["id"])
    article = await kb.approve(Actor(org.eng_lead, "eng_lead"), q["id"], title="变频压缩机异响", tags="fridge noise")
    assert sub.get_nowait().topic == "kb.published"
    assert (await kb.question(q["id"]))["article_id"] == article["id"]
    # the next agent finds it
    found = await kb.search("压缩机 异响")
    assert [a["id"] for a in found] == [article["id"]]
    assert found[0]["product_line"] == "appliances"

    async with sm() as s:
        mails = (await s.execute(select(notifications.c.recipient, notifications.c.subject)
                                 .order_by(notifications.c.id))).all()
    assert [m.recipient for m in mails] == ["agent@example.com", "engineer@example.com", "agent@example.com"]
    assert "has an answer" in mails[2].subject


async def test_unanswered_question_escalates_to_the_engineers_manager(world):
    sm, org, clock, bus, kb, tickets = world
    sub = bus.subscribe("kb.question.")
    q = await kb.ask(Actor(org.agent, "agent"), "Is model X200 dishwasher-safe?", product_line="appliances")
    scheduler = TicketScheduler(sm, bus, clock, None)
    clock.now = T0 + DAY + timedelta(seconds=1)
    report = await scheduler.run_once()
    assert report.questions.escalated == 1
    got = await kb.question(q["id"])
    assert (got["owner_id"], got["escalation_level"]) == (org.eng_lead, 1)
    msg = sub.get_nowait()
    assert msg.topic == "kb.question.escalated" and msg.payload["owner_id"] == org.eng_lead
    assert (await scheduler.run_once()).questions.escalated == 0  # once per deadline
    clock.now += DAY + timedelta(seconds=1)
    report = await scheduler.run_once()
    assert report.questions.reminded == 1 and sub.get_nowait().topic == "kb.question.sla_breached"
    # the engineer's manager may answer in the engineer's place
    await kb.answer(Actor(org.eng_lead, "eng_lead"), q["id"], "Yes, top rack only.")
    clock.now += 3 * DAY
    assert (await scheduler.run_once()).questions.escalated == 0


async def test_question_without_an_engineer_is_refused_clearly(engine):
    sm = sessionmaker(engine)
    kb = KnowledgeBase(sm, None, Clock(T0))
    with pytest.raises(QuestionError, match="no back-office engineer"):
        await kb.ask(Actor(None, "x"), "anything?", product_line="office")
    with pytest.raises(QuestionError, match="no ticket 5"):
        await kb.ask(Actor(None, "x"), "anything?", ticket_id=5)


async def test_a_rejected_answer_goes_back_to_the_engineer_with_a_fresh_deadline(world):
    sm, org, clock, bus, kb, tickets = world
    q = await kb.ask(Actor(org.agent, "agent"), "How long is the compressor warranty?", product_line="appliances")
    await kb.answer(Actor(org.engineer, "engineer"), q["id"], "One year.")
    clock.now = T0 + timedelta(hours=5)
    with pytest.raises(QuestionForbidden):
        await kb.reject(Actor(org.agent, "agent"), q["id"], "wrong")
    back = await kb.reject(Actor(org.supervisor, "supervisor", "supervisor"), q["id"], "it is ten years for the compressor")
    assert back["status"] == "open" and back["sla_deadline"] == (clock.now + DAY).isoformat()
    assert [x["id"] for x in await kb.questions(Actor(org.engineer, "engineer"), "mine")] == [q["id"]]
    await kb.answer(Actor(org.engineer, "engineer"), q["id"], "Ten years on the compressor, one year on the rest.")
    article = await kb.approve(Actor(org.supervisor, "supervisor", "supervisor"), q["id"])
    assert article["title"] == "How long is the compressor warranty?" and "Ten years" in article["body"]
