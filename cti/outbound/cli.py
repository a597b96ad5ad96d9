"""``cti outbound``: follow-ups, campaigns, the do-not-call list, dealers, leads and reports from the shell.

Times are ISO 8601 (UTC when no offset). The policy, rules and credit shares are cti.toml's ``[outbound]``
(cti/outbound/config.py); ``--policy FILE.toml`` overrides them with the keys of that file's ``[outbound]`` table.
"""

from __future__ import annotations

import json
import tomllib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

import click

from cti.cli import Context, pass_ctx, run


def _with_db(ctx: Context, work: Callable[[Any], Awaitable[Any]]) -> Any:
    from cti.db.engine import create_engine, sessionmaker
    from cti.db.schema import init_schema
    from cti.outbound.repository import OutboundError

    async def go() -> Any:
        engine = create_engine(ctx.settings.database.url)
        try:
            await init_schema(engine)
            return await work(sessionmaker(engine))
        finally:
            await engine.dispose()

    try:
        return run(go())
    except OutboundError as exc:
        raise click.ClickException(str(exc)) from None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


async def _agent_id(conn: Any, username: str | None) -> int | None:
    from sqlalchemy import select

    from cti.db.tables import agents

    if not username:
        return None
    found = (await conn.execute(select(agents.c.id).where(agents.c.username == username))).scalar_one_or_none()
    if found is None:
        raise click.ClickException(f"no agent account {username!r}")
    return found


def _dump(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2,
                          default=lambda o: o.isoformat() if isinstance(o, (datetime, date)) else str(o)))


def load_outbound(path: str | None, settings: Any = None) -> tuple[Any, Any, Any]:
    """(policy, rules, credit rules): cti.toml's ``[outbound]`` (``settings.outbound``), with the keys of the
    ``[outbound]`` table of ``path`` (``--policy FILE.toml``) overriding it."""
    from cti.outbound.config import OutboundConfig

    cfg = getattr(settings, "outbound", None) or OutboundConfig()
    try:
        if path:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("outbound", {})
            if not isinstance(data, dict):
                raise ValueError("[outbound] must be a table")
            cfg = cfg.merged(data)
        setup = cfg.build()
        return setup.policy, setup.rules, setup.credits
    except (OSError, tomllib.TOMLDecodeError, ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"policy {path or 'cti.toml [outbound]'}: {exc}") from None


def load_policy(path: str | None, settings: Any = None) -> Any:
    return load_outbound(path, settings)[0]


@click.group()
def outbound() -> None:
    """Outbound follow-ups: call-backs, campaigns, do-not-call, dealers, leads, reports."""


@outbound.command("add")
@click.option("--customer", "customer_id", type=int, required=True)
@click.option("--reason", required=True)
@click.option("--due", help="ISO time (default: now)")
@click.option("--owner", help="agent username")
@click.option("--skill", help="skill group (queue) when no owner")
@pass_ctx
def add(ctx: Context, customer_id: int, reason: str, due: str | None, owner: str | None, skill: str | None) -> None:
    """Add a follow-up (merged into the customer's open one if there is one)."""
    from cti.outbound import repository as repo

    async def work(sm: Any) -> Any:
        async with sm() as s, s.begin():
            conn = await s.connection()
            return await repo.add_followup(conn, customer_id, reason, now=_now(), due_at=_time(due) or _now(),
                                           owner_id=await _agent_id(conn, owner), skill=skill)

    r = _with_db(ctx, work)
    click.echo(f"follow-up {r.followup_id} {'created' if r.created else 'merged'}")


@outbound.command("event")
@click.argument("kind")
@click.option("--customer", "customer_id", type=int, required=True)
@click.option("--key", required=True, help="the event's id (repair order, ticket ...): a rule fires once per key")
@click.option("--detail", default="")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False), help="TOML with [[outbound.rules]]")
@pass_ctx
def event(ctx: Context, kind: str, customer_id: int, key: str, detail: str, policy_path: str | None) -> None:
    """Report a business event (repair.completed, product.purchased, ...) to the follow-up rules."""
    from cti.outbound.rules import BusinessEvent
    from cti.outbound.service import OutboundService

    _, rules, _ = load_outbound(policy_path, ctx.settings)

    async def work(sm: Any) -> Any:
        return await OutboundService(sm, rules=rules).handle_event(BusinessEvent(kind, customer_id, key, _now(), detail))

    made = _with_db(ctx, work)
    if not made:
        click.echo(f"no rule for {kind}")
    for r in made:
        click.echo(f"follow-up {r.followup_id} {'unchanged (seen)' if r.duplicate else 'created' if r.created else 'merged'}")


@outbound.command("campaign")
@click.argument("name")
@click.option("--reason", required=True)
@click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False), help="customer_id or phone column")
@click.option("--dealer", help="every customer of this dealer")
@click.option("--due", help="ISO time (default: now)")
@click.option("--window-days", type=int, default=14, show_default=True)
@pass_ctx
def campaign(ctx: Context, name: str, reason: str, csv_path: str | None, dealer: str | None, due: str | None,
             window_days: int) -> None:
    """Create a campaign: one follow-up per customer (merged with open ones)."""
    from cti.outbound.campaigns import customers_from_csv, customers_of_dealer, run_campaign

    if (csv_path is None) == (dealer is None):
        raise click.UsageError("give exactly one of --csv or --dealer")

    async def work(sm: Any) -> Any:
        async with sm() as s, s.begin():
            conn = await s.connection()
            skipped: list[str] = []
            if csv_path:
                ids, skipped = await customers_from_csv(conn, Path(csv_path).read_text(encoding="utf-8-sig"))
            else:
                ids = await customers_of_dealer(conn, dealer or "")
            start = _time(due) or _now()
            res = await run_campaign(conn, name, reason, ids, due_at=start, due_until=start + timedelta(days=window_days),
                                     now=_now())
            res.skipped[:0] = skipped
            return res

    res = _with_db(ctx, work)
    click.echo(f"campaign {res.campaign_id}: {res.created} follow-ups created, {res.merged} merged")
    for s in res.skipped:
        click.echo(f"skipped: {s}", err=True)


@outbound.command("list")
@click.option("--all", "include_future", is_flag=True, help="also the follow-ups not yet due")
@pass_ctx
def list_(ctx: Context, include_future: bool) -> None:
    """Open follow-ups (due first) with their reasons."""
    from sqlalchemy import select

    from cti.db.tables import outbound_followups as f
    from cti.outbound import repository as repo

    async def work(sm: Any) -> Any:
        async with sm() as s:
            conn = await s.connection()
            q = select(f).where(f.c.status == "open")
            if not include_future:
                q = q.where(f.c.due_at <= _now())
            rows = (await conn.execute(q.order_by(f.c.due_at))).all()
            reasons = await repo.reasons_of(conn, [r.id for r in rows])
            return [repo.followup_dict(r, reasons[r.id]) for r in rows]

    for fu in _with_db(ctx, work):
        click.echo(f"{fu['id']:>6}  customer {fu['customer_id']:<6} due {fu['due_at']:%Y-%m-%d %H:%M}  "
                   f"attempts {fu['attempts']}  {'; '.join(fu['reasons'])}")


@outbound.command("hours")
@click.argument("customer_id", type=int)
@click.option("--timezone", "zone", help="IANA zone of the customer (e.g. Asia/Urumqi)")
@click.option("--hours", "hours_json", help='JSON weekday -> span, 0 = Monday: {"0": "14:00-18:00"}')
@pass_ctx
def hours(ctx: Context, customer_id: int, zone: str | None, hours_json: str | None) -> None:
    """Set when a customer may be called (local time)."""
    from cti.outbound import repository as repo

    try:
        spans = json.loads(hours_json) if hours_json else {}
        if not isinstance(spans, dict):
            raise ValueError("expected a JSON object")
    except ValueError as exc:
        raise click.BadParameter(f"--hours: {exc}") from None

    async def work(sm: Any) -> Any:
        async with sm() as s, s.begin():
            await repo.set_preferences(await s.connection(), customer_id, timezone_name=zone,
                                       hours={str(k): str(v) for k, v in spans.items()}, now=_now())

    _with_db(ctx, work)
    click.echo(f"customer {customer_id}: {zone or 'default zone'}, {spans or 'default hours'}")


@outbound.group()
def dnc() -> None:
    """The do-not-call list."""


@dnc.command("add")
@click.option("--customer", "customer_id", type=int)
@click.option("--number", help="one phone number only")
@click.option("--reason", default="")
@click.option("--by", "by", required=True, help="who recorded the opt-out")
@pass_ctx
def dnc_add(ctx: Context, customer_id: int | None, number: str | None, reason: str, by: str) -> None:
    from cti.customers.callerid import normalize
    from cti.outbound import repository as repo

    e164 = None
    if number:
        e164 = normalize(number).e164
        if e164 is None:
            raise click.BadParameter(f"{number!r} is not a phone number")

    async def work(sm: Any) -> Any:
        async with sm() as s, s.begin():
            conn = await s.connection()
            return await repo.add_dnc(conn, customer_id=customer_id, e164=e164, reason=reason, recorded_by=by,
                                      recorded_by_id=None, now=_now())

    click.echo(f"do-not-call entry {_with_db(ctx, work)}")


@dnc.command("list")
@pass_ctx
def dnc_list(ctx: Context) -> None:
    from cti.outbound import repository as repo

    async def work(sm: Any) -> Any:
        async with sm() as s:
            return await repo.list_dnc(await s.connection())

    _dump(_with_db(ctx, work))


@dnc.command("remove")
@click.argument("entry_id", type=int)
@pass_ctx
def dnc_remove(ctx: Context, entry_id: int) -> None:
    from cti.outbound import repository as repo

    async def work(sm: Any) -> Any:
        async with sm() as s, s.begin():
            return await repo.remove_dnc(await s.connection(), entry_id)

    if not _with_db(ctx, work):
        raise click.ClickException(f"no do-not-call entry {entry_id}")
    click.echo(f"removed {entry_id}")


@outbound.group()
def dealer() -> None:
    """Dealers and their contacts' accounts."""


@dealer.command("add")
@click.argument("code")
@click.option("--name", default="")
@click.option("--territory", default="")
@pass_ctx
def dealer_add(ctx: Context, code: str, name: str, territory: str) -> None:
    from cti.outbound import repository as repo

    async def work(sm: Any) -> Any:
        async with sm() as s, s.begin():
            return await repo.add_dealer(await s.connection(), code, name, territory, now=_now())

    click.echo(f"dealer {code} ({_with_db(ctx, work)})")


@dealer.command("contact")
@click.argument("username")
@click.argument("code")
@pass_ctx
def dealer_contact(ctx: Context, username: str, code: str) -> None:
    """Make an account a dealer's contact: it then sees only that dealer's customers and leads."""
    from cti.outbound import repository as repo

    async def work(sm: Any) -> Any:
        async with sm() as s, s.begin():
            conn = await s.connection()
            await repo.add_dealer_contact(conn, await _agent_id(conn, username) or 0, code, now=_now())

    _with_db(ctx, work)
    click.echo(f"{username} is a contact of {code}")


@outbound.command("leads")
@click.option("--dealer", "dealer_code")
@pass_ctx
def leads(ctx: Context, dealer_code: str | None) -> None:
    """Leads (with their credits), newest first."""
    from cti.outbound import repository as repo

    async def work(sm: Any) -> Any:
        async with sm() as s:
            return await repo.list_leads(await s.connection(), dealer=dealer_code)

    _dump(_with_db(ctx, work))


@outbound.group()
def report() -> None:
    """Handover and contact-frequency reports."""


@report.command("frequency")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False))
@click.option("--since")
@pass_ctx
def report_frequency(ctx: Context, policy_path: str | None, since: str | None) -> None:
    """The most contacts any customer had per cap window: proof the policy held (exit 1 if not)."""
    from cti.outbound.reports import contact_frequency

    policy = load_policy(policy_path, ctx.settings)
    caps = list(dict.fromkeys([*policy.caps, *(c for cs in policy.caps_by_reason.values() for c in cs)]))

    async def work(sm: Any) -> Any:
        async with sm() as s:
            return await contact_frequency(await s.connection(), caps, since=_time(since))

    rep = _with_db(ctx, work)
    _dump(rep)
    if not all(c["held"] for c in rep["caps"]):
        raise SystemExit(1)


@report.command("handover")
@click.option("--team", required=True, help="org-chart department")
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), help="default: today")
@click.option("--zone", default="Asia/Shanghai", show_default=True)
@click.option("--csv", "as_csv", is_flag=True)
@pass_ctx
def report_handover(ctx: Context, team: str, day: datetime | None, zone: str, as_csv: bool) -> None:
    from cti.outbound.reports import handover, handover_csv

    async def work(sm: Any) -> Any:
        async with sm() as s:
            return await handover(await s.connection(), team, (day or _now()).date(), zone=zone)

    rep = _with_db(ctx, work)
    if as_csv:
        click.echo(handover_csv(rep), nl=False)
    else:
        _dump(rep)
