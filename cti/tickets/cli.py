"""``cti tickets`` and ``cti org``: complaint tickets and the org chart from the shell.

Commands act as the operator (``cli``, with admin rights) unless ``--as USERNAME`` names an account.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

import click

from cti.cli import Context, pass_ctx, run


def with_db(ctx: Context, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``work(sessionmaker)`` against the configured database (schema created if missing)."""
    from cti.db.engine import create_engine, sessionmaker
    from cti.db.schema import init_schema

    async def _go() -> Any:
        engine = create_engine(ctx.settings.database.url)
        try:
            await init_schema(engine)
            return await work(sessionmaker(engine))
        finally:
            await engine.dispose()

    return run(_go())


def domain(call: Callable[[], Any]) -> Any:
    """Domain refusals become one-line CLI errors."""
    from cti.kb.articles import ArticleError
    from cti.kb.questions import QuestionError
    from cti.tickets.org import OrgError
    from cti.tickets.repository import TicketError
    from cti.tickets.states import IllegalTransition

    try:
        return call()
    except (TicketError, IllegalTransition, OrgError, QuestionError, ArticleError) as exc:
        raise click.ClickException(str(exc)) from None


async def actor_for(sm: Any, username: str | None) -> Any:
    from sqlalchemy import select

    from cti.db.tables import agents
    from cti.tickets.repository import Actor

    if not username:
        return Actor(None, "cli", "admin")
    async with sm() as s:
        row = (await s.execute(select(agents.c.id, agents.c.role).where(agents.c.username == username))).first()
    if row is None:
        raise click.ClickException(f"no agent account {username!r}")
    return Actor(row.id, username, row.role)


async def agent_id(sm: Any, username: str | None) -> int | None:
    if not username:
        return None
    from cti.tickets.org import agent_id_by_username

    async with sm() as s:
        return await agent_id_by_username(await s.connection(), username)


def _row(t: dict[str, Any]) -> str:
    flag = " OVERDUE" if t.get("overdue") else ""
    return (f"#{t['id']:<6} {t['status']:<9} {t['category']:<10} owner={t['owner_id']} level={t['escalation_level']} "
            f"due={t['sla_deadline']}{flag}  {t['description'][:60]!r}")


@click.group()
def tickets() -> None:
    """Complaint tickets: list, show, create, answer, resolve, close, reopen, escalate."""


@tickets.command("list")
@click.option("--view", type=click.Choice(["all", "mine", "team", "overdue", "escalated"]), default="all", show_default=True)
@click.option("--as", "as_user", default=None, help="Act as this account (views mine/team are relative to it).")
@click.option("--customer", "customer_id", type=int, default=None)
@click.option("--status", "statuses", multiple=True, type=click.Choice(["open", "answered", "resolved", "closed", "reopened"]))
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@pass_ctx
def list_cmd(ctx: Context, view: str, as_user: str | None, customer_id: int | None, statuses: tuple[str, ...],
             limit: int, as_json: bool) -> None:
    """List tickets, most urgent first."""
    from cti.tickets.service import TicketService

    async def work(sm: Any) -> Any:
        actor = await actor_for(sm, as_user)
        return await TicketService(sm).view(actor, view, customer_id=customer_id, statuses=list(statuses) or None,
                                            limit=limit)

    found = domain(lambda: with_db(ctx, work))
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2))
        return
    for t in found:
        click.echo(_row(t))
    click.echo(f"{len(found)} ticket(s)", err=True)


@tickets.command("show")
@click.argument("ticket_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show_cmd(ctx: Context, ticket_id: int, as_json: bool) -> None:
    """A ticket and its history."""
    from cti.tickets.service import TicketService

    t = domain(lambda: with_db(ctx, lambda sm: TicketService(sm).get(ticket_id)))
    if as_json:
        click.echo(json.dumps(t, ensure_ascii=False, indent=2))
        return
    click.echo(_row(t))
    click.echo(f"customer={t['customer_id']} call={t['call_id']} product_line={t['product_line']} "
               f"created={t['created_at']}")
    click.echo(t["description"])
    click.echo("history:")
    for h in t["history"]:
        owner = f" owner {h['from_owner_id']}->{h['to_owner_id']}" if h["to_owner_id"] is not None else ""
        status = f" {h['from_status'] or ''}->{h['to_status']}" if h["to_status"] else ""
        click.echo(f"  {h['at']} {h['actor']:<12} {h['action']:<10}{status}{owner} {h['detail'][:100]!r}")


@tickets.command("create")
@click.option("--customer", "customer_id", type=int, required=True)
@click.option("--description", required=True)
@click.option("--category", default="complaint", show_default=True)
@click.option("--product-line", type=click.Choice(["appliances", "mobile", "office"]), default=None)
@click.option("--call", "call_id", type=int, default=None, help="calls.id of the call it came from.")
@click.option("--owner", default=None, help="Responsible person (username); default: the product line's front line.")
@click.option("--as", "as_user", default=None, help="Record it as this account.")
@pass_ctx
def create_cmd(ctx: Context, customer_id: int, description: str, category: str, product_line: str | None,
               call_id: int | None, owner: str | None, as_user: str | None) -> None:
    """Record a ticket and send it to its responsible person."""
    from cti.tickets.service import TicketService

    async def work(sm: Any) -> Any:
        return await TicketService(sm).create(await actor_for(sm, as_user), customer_id=customer_id,
                                              description=description, category=category, product_line=product_line,
                                              call_id=call_id, owner_id=await agent_id(sm, owner))

    t = domain(lambda: with_db(ctx, work))
    click.echo(f"ticket #{t['id']} created, owner {t['owner_id']}, due {t['sla_deadline']}")


def _transition(name: str, action: str, text_name: str, required: bool) -> None:
    @tickets.command(name, help=f"{action.capitalize()} ticket TICKET_ID ({text_name.upper()}"
                     f"{'' if required else ', optional'}).")
    @click.argument("ticket_id", type=int)
    @click.argument(text_name, required=required, default=None)
    @click.option("--as", "as_user", default=None, help="Act as this account.")
    @pass_ctx
    def cmd(ctx: Context, ticket_id: int, as_user: str | None, **kw: Any) -> None:
        from cti.tickets.service import TicketService

        async def work(sm: Any) -> Any:
            return await TicketService(sm).act(await actor_for(sm, as_user), ticket_id, action, kw.get(text_name) or "")

        t = domain(lambda: with_db(ctx, work))
        click.echo(f"ticket #{t['id']} is {t['status']}")



_transition("answer", "answer", "text", True)
_transition("resolve", "resolve", "note", False)
_transition("close", "close", "note", False)
_transition("reopen", "reopen", "reason", False)


@tickets.command("escalate")
@pass_ctx
def escalate_cmd(ctx: Context) -> None:
    """Run one escalation pass now (what the daemon's scheduler does every interval), no delivery."""
    from cti.tickets.scheduler import TicketScheduler
    from cti.tickets.sla import system_clock

    report = with_db(ctx, lambda sm: TicketScheduler(sm, None, system_clock, None).run_once())
    click.echo(f"tickets: {report.tickets.escalated} escalated, {report.tickets.reminded} reminded; "
               f"questions: {report.questions.escalated} escalated, {report.questions.reminded} reminded")


@click.group()
def org() -> None:
    """The org chart: who answers to whom (the escalation path), engineers by product line."""


@org.command("add")
@click.argument("username")
@click.option("--manager", default=None, help="Username of the next level up (none: top of the chain).")
@click.option("--department", default="")
@click.option("--product-line", type=click.Choice(["appliances", "mobile", "office"]), default=None,
              help="Product line covered (default: all).")
@click.option("--engineer", is_flag=True, help="A back-office engineer (receives KB questions).")
@click.option("--email", default=None, help="Where escalations are e-mailed.")
@click.option("--webhook", default=None, help="URL that receives escalations as JSON POSTs.")
@pass_ctx
def org_add(ctx: Context, username: str, manager: str | None, department: str, product_line: str | None,
            engineer: bool, email: str | None, webhook: str | None) -> None:
    """Place an existing account (`cti agents add`) in the org chart, or move it."""
    from cti.tickets.org import set_person
    from cti.tickets.sla import system_clock

    async def work(sm: Any) -> None:
        async with sm() as s, s.begin():
            conn = await s.connection()
            from cti.tickets.org import agent_id_by_username

            me = await agent_id_by_username(conn, username)
            boss = await agent_id_by_username(conn, manager) if manager else None
            await set_person(conn, me, now=system_clock(), manager_id=boss, department=department,
                             product_line=product_line, engineer=engineer, email=email, webhook_url=webhook)

    domain(lambda: with_db(ctx, work))
    click.echo(f"{username} is in the org chart" + (f", reporting to {manager}" if manager else " (top)"))


@org.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def org_list(ctx: Context, as_json: bool) -> None:
    """The org chart as a tree."""
    from cti.tickets.org import describe_tree, load_chart

    async def work(sm: Any) -> Any:
        async with sm() as s:
            return await load_chart(await s.connection())

    chart = with_db(ctx, work)
    if as_json:
        click.echo(json.dumps([p.public() for _, p in describe_tree(chart)], ensure_ascii=False, indent=2))
        return
    for depth, p in describe_tree(chart):
        extra = ", ".join(x for x in (p.department, p.product_line or "all lines", "engineer" if p.engineer else "",
                                      p.email or "", "" if p.active else "INACTIVE") if x)
        click.echo(f"{'  ' * depth}{p.username} (#{p.agent_id}) [{extra}]")
