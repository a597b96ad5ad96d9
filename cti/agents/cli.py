"""``cti agents``: add, list and re-password the accounts of agents, supervisors and admins."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import click

from cti.cli import Context, pass_ctx, run


def _skills(values: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        queue, _, penalty = v.partition(":")
        if not queue:
            raise click.BadParameter(f"{v!r}: expected QUEUE or QUEUE:PENALTY", param_hint="--skill")
        try:
            out[queue] = int(penalty or 0)
        except ValueError:
            raise click.BadParameter(f"{v!r}: penalty must be an integer", param_hint="--skill") from None
    return out


def _with_db(ctx: Context, work: Callable[[Any], Awaitable[Any]]) -> Any:
    from cti.db.engine import create_engine
    from cti.db.schema import init_schema

    async def _go() -> Any:
        engine = create_engine(ctx.settings.database.url)
        try:
            await init_schema(engine)
            async with engine.begin() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    return run(_go())


@click.group()
def agents() -> None:
    """Console accounts (agents, supervisors, admins)."""


@agents.command("add")
@click.argument("username")
@click.option("--name", "display_name", default="", help="Name shown in the console.")
@click.option("--role", type=click.Choice(["agent", "supervisor", "admin"]), default="agent", show_default=True)
@click.option("--interface", default=None, help="Asterisk interface of the agent's phone, e.g. PJSIP/1001.")
@click.option("--skill", "skills", multiple=True, help="QUEUE[:PENALTY], repeatable (queues joined on 'ready').")
@click.option("--language", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("--experienced", is_flag=True, help="Senior agent (complaints routing).")
@click.password_option("--password", prompt=True, help="Prompted when omitted (8+ characters).")
@pass_ctx
def add_cmd(ctx: Context, username: str, display_name: str, role: str, interface: str | None,
            skills: tuple[str, ...], language: str, experienced: bool, password: str) -> None:
    """Create an account."""
    from cti.agents.accounts import AccountError, add_agent
    from cti.agents.passwords import WeakPassword, hash_password

    try:
        pw_hash = hash_password(password)
        agent_id = _with_db(ctx, lambda conn: add_agent(
            conn, username, pw_hash, display_name=display_name, role=role, interface=interface,
            language=language, experienced=experienced, skills=_skills(skills)))
    except (AccountError, WeakPassword) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"account {username} created (id {agent_id}, role {role})")


@agents.command("list")
@pass_ctx
def list_cmd(ctx: Context) -> None:
    """Every account: username, role, interface, skills, active."""
    from cti.agents.accounts import list_agents

    rows = _with_db(ctx, list_agents)
    click.echo(f"{'USERNAME':<16} {'ROLE':<10} {'INTERFACE':<16} {'LANG':<4} {'ACTIVE':<6} NAME / SKILLS")
    for a in rows:
        skills = ",".join(f"{q}:{p}" for q, p in a.skills.items())
        click.echo(f"{a.username:<16} {a.role:<10} {a.interface or '-':<16} {a.language:<4} "
                   f"{'yes' if a.active else 'no':<6} {a.display_name} {skills}".rstrip())


@agents.command("passwd")
@click.argument("username")
@click.password_option("--password", prompt="New password", help="Prompted when omitted (8+ characters).")
@pass_ctx
def passwd_cmd(ctx: Context, username: str, password: str) -> None:
    """Set an account's password."""
    from cti.agents.accounts import AccountError, set_password
    from cti.agents.passwords import WeakPassword, hash_password

    try:
        pw_hash = hash_password(password)
        _with_db(ctx, lambda conn: set_password(conn, username, pw_hash))
    except (AccountError, WeakPassword) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"password of {username} changed")
