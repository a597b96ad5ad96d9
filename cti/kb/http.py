"""REST endpoints for the knowledge base and the engineers' question queue, mounted by cti/web.

``add_routes(app, sessionmaker, require, require_write=None, bus=bus, clock=clock, policy=policy)``.
Every endpoint needs a logged-in account; errors are ``{"error": "..."}`` with 400/403/404/409.

=======  ==================================  =============================================================
GET      /api/kb/search                      ?q= &product_line= &limit= -> {articles: [article + snippet]}
GET      /api/kb/suggest                     ?product_line=..(repeatable) &ivr= &limit= -> {articles}
                                             (the screen-pop: customer's product lines + IVR choice)
GET      /api/kb/articles/{id}               -> article (with body)
POST     /api/kb/articles                    {title, body, product_line?, tags?} (supervisors, admins,
                                             back-office engineers) -> 201 article
PUT      /api/kb/articles/{id}               {title?, body?, product_line?, tags?} (same roles)
POST     /api/kb/questions                   {question, product_line?, customer_id?, call_id?, ticket_id?}
                                             "no answer found" -> 201 question (routed to an engineer)
GET      /api/kb/questions                   ?view=mine|asked|open|answered|all -> {questions}
GET      /api/kb/questions/{id}              -> question
POST     /api/kb/questions/{id}/answer       {answer} (the engineer in charge, their managers, supervisors)
POST     /api/kb/questions/{id}/approve      {title?, tags?, body?} -> 201 article (supervisors, admins,
                                             the answering engineer's managers)
POST     /api/kb/questions/{id}/reject       {reason} -> question open again for its engineer (same roles)
=======  ==================================  =============================================================
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import async_sessionmaker

from cti.kb.articles import article_dict, get_article, update_article
from cti.kb.questions import SUPERVISOR_ROLES, KnowledgeBase
from cti.tickets.httpjson import Require, actor_of, body, domain_errors, error, opt_int, opt_str, reply
from cti.tickets.org import load_chart
from cti.tickets.sla import Clock, SlaPolicy, system_clock, utc


def routes(sessionmaker: async_sessionmaker, require: Require, require_write: Require | None = None, *,
           bus: Any = None, clock: Clock = system_clock, policy: SlaPolicy | None = None) -> list[web.RouteDef]:
    kb = KnowledgeBase(sessionmaker, bus, clock, policy)
    write = require_write or require

    async def editor(request: web.Request) -> Any:
        account = await write(request)
        if account.role in SUPERVISOR_ROLES:
            return account
        async with sessionmaker() as session:
            person = (await load_chart(await session.connection())).get(account.id)
        if person is None or not person.engineer:
            raise error(web.HTTPForbidden, "needs role supervisor or admin, or a back-office engineer")
        return account

    @domain_errors
    async def search(request: web.Request) -> web.Response:
        await require(request)
        q = request.query
        query = q.get("q", "")[:500]
        found = await kb.search(query, product_line=q.get("product_line") or None,
                                limit=opt_int(q.get("limit"), "limit") or 10)
        return reply({"articles": found})

    @domain_errors
    async def suggest(request: web.Request) -> web.Response:
        await require(request)
        q = request.query
        lines = [p for p in q.getall("product_line", []) if p][:10]
        return reply({"articles": await kb.suggest(lines, q.get("ivr") or None, opt_int(q.get("limit"), "limit") or 5)})

    @domain_errors
    async def article(request: web.Request) -> web.Response:
        await require(request)
        return reply(await kb.article(int(request.match_info["id"])))

    @domain_errors
    async def add(request: web.Request) -> web.Response:
        account = await editor(request)
        b = await body(request)
        created = await kb.add_article(actor_of(account), title=opt_str(b.get("title"), "title") or "",
                                       body=opt_str(b.get("body"), "body") or "",
                                       product_line=opt_str(b.get("product_line"), "product_line"), tags=b.get("tags"))
        return reply(created, status=201)

    @domain_errors
    async def edit(request: web.Request) -> web.Response:
        await editor(request)
        b = await body(request)
        article_id = int(request.match_info["id"])
        async with sessionmaker() as session, session.begin():
            conn = await session.connection()
            await update_article(conn, article_id, utc(clock()),
                                 **{k: opt_str(b.get(k), k) for k in ("title", "body", "product_line") if k in b},
                                 **({"tags": b["tags"]} if "tags" in b else {}))
            return reply(article_dict(await get_article(conn, article_id)))

    @domain_errors
    async def ask(request: web.Request) -> web.Response:
        account = await write(request)
        b = await body(request)
        q = await kb.ask(actor_of(account), opt_str(b.get("question"), "question") or "",
                         product_line=opt_str(b.get("product_line"), "product_line"),
                         customer_id=opt_int(b.get("customer_id"), "customer_id"),
                         call_id=opt_int(b.get("call_id"), "call_id"), ticket_id=opt_int(b.get("ticket_id"), "ticket_id"))
        return reply(q, status=201)

    @domain_errors
    async def questions(request: web.Request) -> web.Response:
        account = await require(request)
        return reply({"questions": await kb.questions(actor_of(account), request.query.get("view", "mine"),
                                                      opt_int(request.query.get("limit"), "limit") or 100)})

    @domain_errors
    async def question(request: web.Request) -> web.Response:
        account = await require(request)
        return reply(await kb.question(int(request.match_info["id"]), actor_of(account)))

    @domain_errors
    async def answer(request: web.Request) -> web.Response:
        account = await write(request)
        b = await body(request)
        return reply(await kb.answer(actor_of(account), int(request.match_info["id"]),
                                     opt_str(b.get("answer"), "answer") or ""))

    @domain_errors
    async def approve(request: web.Request) -> web.Response:
        account = await write(request)
        b = await body(request) if request.body_exists else {}
        created = await kb.approve(actor_of(account), int(request.match_info["id"]),
                                   title=opt_str(b.get("title"), "title"), tags=b.get("tags"),
                                   body=opt_str(b.get("body"), "body"))
        return reply(created, status=201)

    @domain_errors
    async def reject(request: web.Request) -> web.Response:
        account = await write(request)
        b = await body(request)
        return reply(await kb.reject(actor_of(account), int(request.match_info["id"]),
                                     opt_str(b.get("reason"), "reason") or ""))

    return [
        web.get("/api/kb/search", search),
        web.get("/api/kb/suggest", suggest),
        web.get(r"/api/kb/articles/{id:\d+}", article),
        web.post("/api/kb/articles", add),
        web.put(r"/api/kb/articles/{id:\d+}", edit),
        web.post("/api/kb/questions", ask),
        web.get("/api/kb/questions", questions),
        web.get(r"/api/kb/questions/{id:\d+}", question),
        web.post(r"/api/kb/questions/{id:\d+}/answer", answer),
        web.post(r"/api/kb/questions/{id:\d+}/approve", approve),
        web.post(r"/api/kb/questions/{id:\d+}/reject", reject),
    ]


def add_routes(app: web.Application, sessionmaker: async_sessionmaker, require: Require,
               require_write: Require | None = None, **kw: Any) -> None:
    """Mount the knowledge-base endpoints on ``app`` (see the module docstring)."""
    app.router.add_routes(routes(sessionmaker, require, require_write, **kw))
