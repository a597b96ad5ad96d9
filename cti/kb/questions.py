"""The learning loop: a question no article answers goes to a back-office engineer of its product
line (with its own deadline and escalation, run by the TicketScheduler); the engineer's answer
goes back to the asking agent (and the ticket's history); once approved it becomes an article.

States: ``open`` (waiting for an engineer) -> ``answered`` -> ``published`` (an article exists);
an answer not approved (``reject``) sends the question back to ``open`` with a fresh deadline.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker

from cti.customers.scope import scope_of
from cti.db.tables import PRODUCT_LINES, kb_questions, tickets
from cti.kb.articles import add_article, article_dict, get_article, search, suggest
from cti.tickets import outbox, topics
from cti.tickets.org import OrgChart, load_chart
from cti.tickets.repository import Actor, add_history, call_exists, customer_exists, history_entry, iso, ticket_exists
from cti.tickets.sla import Clock, SlaPolicy, system_clock, utc

log = structlog.get_logger(__name__)

MAX_QUESTION = 5_000
MAX_ANSWER = 50_000
SUPERVISOR_ROLES = ("supervisor", "admin")
QUESTION_VIEWS = ("mine", "asked", "open", "answered", "all")


class QuestionError(ValueError):
    """A question request that cannot be done; the message says why."""


class QuestionForbidden(QuestionError):
    pass


def question_dict(row: Any) -> dict[str, Any]:
    return {"id": row.id, "question": row.question, "product_line": row.product_line, "asked_by": row.asked_by,
            "customer_id": row.customer_id, "call_id": row.call_id, "ticket_id": row.ticket_id, "status": row.status,
            "owner_id": row.owner_id, "escalation_level": row.escalation_level, "sla_deadline": iso(row.sla_deadline),
            "answer": row.answer, "answered_by": row.answered_by, "answered_at": iso(row.answered_at),
            "article_id": row.article_id, "created_at": iso(row.created_at), "updated_at": iso(row.updated_at)}


def _may_handle(actor: Actor, owner_id: int | None, chart: OrgChart) -> bool:
    if actor.role in SUPERVISOR_ROLES:
        return True
    return actor.id is not None and (actor.id == owner_id or (owner_id is not None and chart.manages(actor.id, owner_id)))


class KnowledgeBase:
    """Articles and the question loop; one transaction per call, bus events after commit."""

    def __init__(self, sessionmaker: async_sessionmaker, bus: Any = None, clock: Clock = system_clock,
                 policy: SlaPolicy | None = None) -> None:
        self.sm = sessionmaker
        self.bus = bus
        self.clock = clock
        self.policy = policy or SlaPolicy()

    def now(self) -> datetime:
        return utc(self.clock())

    def _publish(self, topic: str, payload: dict[str, Any]) -> None:
        if self.bus is not None:
            self.bus.publish(topic, payload)

    # -- articles ---------------------------------------------------------------------------
    async def search(self, query: str, *, product_line: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
        async with self.sm() as session:
            return await search(await session.connection(), query, product_line=product_line, limit=limit)

    async def suggest(self, product_lines: list[str], ivr_choice: str | None, limit: int = 5) -> list[dict[str, Any]]:
        async with self.sm() as session:
            return await suggest(await session.connection(), product_lines, ivr_choice, limit)

    async def article(self, article_id: int) -> dict[str, Any]:
        async with self.sm() as session:
            return article_dict(await get_article(await session.connection(), article_id))

    async def add_article(self, actor: Actor, *, title: str, body: str, product_line: str | None = None,
                          tags: Any = None) -> dict[str, Any]:
        async with self.sm() as session, session.begin():
            conn = await session.connection()
            aid = await add_article(conn, title=title, body=body, product_line=product_line, tags=tags,
                                    created_by=actor.id, now=self.now())
            return article_dict(await get_article(conn, aid))

    # -- questions --------------------------------------------------------------------------
    async def _pick_engineer(self, conn: AsyncConnection, chart: OrgChart, product_line: str | None) -> int:
        engineers = chart.engineers_for(product_line)
        if not engineers:
            raise QuestionError(f"no back-office engineer for product line {product_line or '(any)'}: "
                                "add one to the org chart (`cti org add --engineer`)")
        specialists = [p.agent_id for p in engineers if p.product_line == product_line] or [p.agent_id for p in engineers]
        load = dict((await conn.execute(
            select(kb_questions.c.owner_id, func.count()).where(kb_questions.c.owner_id.in_(specialists),
                                                                kb_questions.c.status == "open")
            .group_by(kb_questions.c.owner_id))).all())
        return min(specialists, key=lambda a: (load.get(a, 0), a))

    async def ask(self, actor: Actor, question: str, *, product_line: str | None = None, customer_id: int | None = None,
                  call_id: int | None = None, ticket_id: int | None = None) -> dict[str, Any]:
        """"No answer found": route ``question`` to an engineer of ``product_line`` and notify them."""
        question = (question or "").replace("\x00", "").strip()
        if not question or len(question) > MAX_QUESTION:
            raise QuestionError(f"question: 1-{MAX_QUESTION} characters")
        if product_line is not None and product_line not in PRODUCT_LINES:
            raise QuestionError(f"product_line: {product_line!r} (expected {', '.join(PRODUCT_LINES)})")
        now = self.now()
        deadline = self.policy.question_deadline(now)
        async with self.sm() as session, session.begin():
            conn = await session.connection()
            if customer_id is not None:
                await (await scope_of(conn, actor)).check(conn, customer_id)
            for name, value, exists in (("customer", customer_id, customer_exists), ("call", call_id, call_exists),
                                        ("ticket", ticket_id, ticket_exists)):
                if value is not None and not await exists(conn, value):
                    raise QuestionError(f"no {name} {value}")
            chart = await load_chart(conn)
            owner = await self._pick_engineer(conn, chart, product_line)
            qid = (await conn.execute(kb_questions.insert().values(
                question=question, product_line=product_line, asked_by=actor.id, customer_id=customer_id,
                call_id=call_id, ticket_id=ticket_id, status="open", owner_id=owner, escalation_level=0,
                sla_deadline=deadline, created_at=now, updated_at=now).returning(kb_questions.c.id))).scalar_one()
            row = await self._get(conn, qid)
            event = {"question_id": qid, "question": question[:500], "product_line": product_line, "owner_id": owner,
                     "asked_by": actor.id, "customer_id": customer_id, "ticket_id": ticket_id,
                     "sla_deadline": iso(deadline), "at": now.timestamp()}
            await outbox.enqueue(conn, outbox.rows_for(chart.get(owner), {"event": topics.KB_QUESTION, **event},
                                                       subject=f"Question #{qid} from the call center",
                                                       key=f"question:{qid}:asked", now=now))
        log.info("kb.question_asked", question_id=qid, owner_id=owner, product_line=product_line)
        self._publish(topics.KB_QUESTION, event)
        return question_dict(row)

    async def _get(self, conn: AsyncConnection, question_id: int) -> Any:
        row = (await conn.execute(select(kb_questions).where(kb_questions.c.id == question_id))).first()
        if row is None:
            raise QuestionError(f"no question {question_id}")
        return row

    async def answer(self, actor: Actor, question_id: int, answer: str) -> dict[str, Any]:
        """The engineer's answer: back to the asking agent (bus + outbox) and into the ticket's history."""
        answer = (answer or "").replace("\x00", "").strip()
        if not answer or len(answer) > MAX_ANSWER:
            raise QuestionError(f"answer: 1-{MAX_ANSWER} characters")
        now = self.now()
        async with self.sm() as session, session.begin():
            conn = await session.connection()
            row = await self._get(conn, question_id)
            chart = await load_chart(conn)
            if row.status != "open":
                raise QuestionError(f"question {question_id} is {row.status}: only an open question can be answered")
            if not _may_handle(actor, row.owner_id, chart):
                raise QuestionForbidden(f"only the engineer in charge, their managers or a supervisor may answer "
                                        f"question {question_id}")
            res = await conn.execute(update(kb_questions).where(kb_questions.c.id == question_id,
                                                                kb_questions.c.status == "open")
                                     .values(status="answered", answer=answer, answered_by=actor.id, answered_at=now,
                                             updated_at=now))
            if res.rowcount != 1:
                raise QuestionError(f"question {question_id} changed meanwhile; reload it")
            if row.ticket_id is not None and (await conn.execute(
                    select(tickets.c.id).where(tickets.c.id == row.ticket_id))).first() is not None:
                await add_history(conn, [history_entry(row.ticket_id, actor, "note", now,
                                                       detail=f"back-office answer to question #{question_id}: {answer}")])
            event = {"question_id": question_id, "question": row.question[:500], "answer": answer[:2000],
                     "asked_by": row.asked_by, "answered_by": actor.id, "ticket_id": row.ticket_id,
                     "customer_id": row.customer_id, "at": now.timestamp()}
            await outbox.enqueue(conn, outbox.rows_for(chart.get(row.asked_by), {"event": topics.KB_ANSWERED, **event},
                                                       subject=f"Your question #{question_id} has an answer",
                                                       key=f"question:{question_id}:answered", now=now))
            updated = await self._get(conn, question_id)
        log.info("kb.question_answered", question_id=question_id, answered_by=actor.id)
        self._publish(topics.KB_ANSWERED, event)
        return question_dict(updated)

    async def approve(self, actor: Actor, question_id: int, *, title: str | None = None, tags: Any = None,
                      body: str | None = None) -> dict[str, Any]:
        """Publish an answered question as a new article (supervisors, admins, the answerer's managers)."""
        now = self.now()
        async with self.sm() as session, session.begin():
            conn = await session.connection()
            row = await self._get(conn, question_id)
            chart = await load_chart(conn)
            if row.status != "answered":
                raise QuestionError(f"question {question_id} is {row.status}: only an answered question can be approved")
            allowed = actor.role in SUPERVISOR_ROLES or (
                actor.id is not None and row.answered_by is not None and chart.manages(actor.id, row.answered_by))
            if not allowed:
                raise QuestionForbidden("only a supervisor, an admin or the answering engineer's manager may approve")
            article_id = await add_article(conn, title=title or row.question[:120], body=body or row.answer,
                                           product_line=row.product_line, tags=tags, created_by=row.answered_by, now=now)
            res = await conn.execute(update(kb_questions).where(kb_questions.c.id == question_id,
                                                                kb_questions.c.status == "answered")
                                     .values(status="published", article_id=article_id, updated_at=now))
            if res.rowcount != 1:
                raise QuestionError(f"question {question_id} changed meanwhile; reload it")
            article = article_dict(await get_article(conn, article_id))
        event = {"question_id": question_id, "article_id": article_id, "title": article["title"],
                 "asked_by": row.asked_by, "approved_by": actor.id, "at": now.timestamp()}
        log.info("kb.article_published", question_id=question_id, article_id=article_id)
        self._publish(topics.KB_PUBLISHED, event)
        return article

    async def reject(self, actor: Actor, question_id: int, reason: str) -> dict[str, Any]:
        """Send an answered question back to its engineer (not approved): open again, fresh deadline."""
        reason = (reason or "").replace("\x00", "").strip()
        if not reason or len(reason) > MAX_QUESTION:
            raise QuestionError(f"reason: 1-{MAX_QUESTION} characters")
        now = self.now()
        async with self.sm() as session, session.begin():
            conn = await session.connection()
            row = await self._get(conn, question_id)
            chart = await load_chart(conn)
            if row.status != "answered":
                raise QuestionError(f"question {question_id} is {row.status}: only an answered question can be rejected")
            allowed = actor.role in SUPERVISOR_ROLES or (
                actor.id is not None and row.answered_by is not None and chart.manages(actor.id, row.answered_by))
            if not allowed:
                raise QuestionForbidden("only a supervisor, an admin or the answering engineer's manager may reject")
            deadline = self.policy.question_deadline(now)
            res = await conn.execute(update(kb_questions).where(kb_questions.c.id == question_id,
                                                                kb_questions.c.status == "answered")
                                     .values(status="open", sla_deadline=deadline, updated_at=now))
            if res.rowcount != 1:
                raise QuestionError(f"question {question_id} changed meanwhile; reload it")
            event = {"question_id": question_id, "question": row.question[:500], "product_line": row.product_line,
                     "owner_id": row.owner_id, "asked_by": row.asked_by, "customer_id": row.customer_id,
                     "ticket_id": row.ticket_id, "sla_deadline": iso(deadline), "reason": reason[:500],
                     "at": now.timestamp()}
            await outbox.enqueue(conn, outbox.rows_for(chart.get(row.owner_id), {"event": topics.KB_QUESTION, **event},
                                                       subject=f"Question #{question_id}: answer not approved",
                                                       key=f"question:{question_id}:rejected:{now.isoformat()}", now=now))
            updated = await self._get(conn, question_id)
        self._publish(topics.KB_QUESTION, event)
        return question_dict(updated)

    async def question(self, question_id: int, actor: Actor | None = None) -> dict[str, Any]:
        """One question (``actor``: a dealer contact reads only those about its dealer's customers)."""
        async with self.sm() as session:
            conn = await session.connection()
            row = await self._get(conn, question_id)
            scope = await scope_of(conn, actor)
            if scope.is_dealer:
                await scope.check(conn, row.customer_id)
            return question_dict(row)

    async def questions(self, actor: Actor, view: str = "mine", limit: int = 100) -> list[dict[str, Any]]:
        """mine (in my charge), asked (by me), open/answered/all (supervisors; engineers see their team's)."""
        if view not in QUESTION_VIEWS:
            raise QuestionError(f"view: {view!r} (expected {', '.join(QUESTION_VIEWS)})")
        q = select(kb_questions)
        async with self.sm() as session:
            conn = await session.connection()
            if view == "mine":
                q = q.where(kb_questions.c.owner_id == actor.id, kb_questions.c.status == "open")
            elif view == "asked":
                q = q.where(kb_questions.c.asked_by == actor.id)
            else:
                if view != "all":
                    q = q.where(kb_questions.c.status == view)
                if actor.role not in SUPERVISOR_ROLES:
                    chart = await load_chart(conn)
                    team = chart.team_of(actor.id) | {actor.id} if actor.id is not None else set()
                    q = q.where(kb_questions.c.owner_id.in_(team))
            rows = (await conn.execute(q.order_by(kb_questions.c.sla_deadline, kb_questions.c.id)
                                       .limit(max(1, min(limit, 1000))))).all()
        return [question_dict(r) for r in rows]
