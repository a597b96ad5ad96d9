"""``cti dialplan``: check, diff, deploy, rollback, history."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

import click

from cti.cli import Context, pass_ctx, run
from cti.dialplan.tree import ConfigTree, TreeError


def _tree(path: str | None, ctx: Context) -> ConfigTree:
    try:
        return ConfigTree.at(path or ctx.settings.deploy.source_dir)
    except TreeError as exc:
        raise click.ClickException(str(exc)) from None


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    sudo = os.environ.get("SUDO_USER")
    return f"{sudo} (as {user})" if sudo and sudo != user else user


def _config_file(ctx: Context) -> Path | None:
    return Path(ctx.config_path) if ctx.config_path else None


def _print_report(report, quiet: bool = False) -> None:
    base = Path.cwd()
    for f in report.errors:
        click.echo(f.format(base))
    if not quiet:
        for f in report.warnings:
            click.echo(f.format(base))
    click.echo(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s) "
               f"in {report.tree.root} ({report.elapsed_s * 1000:.0f} ms)", err=True)


@click.group()
def dialplan() -> None:
    """Check, deploy and roll back the dialplans and Asterisk configuration."""


def _saved_rules(ctx: Context) -> tuple[int, dict] | None:
    """The routing rules saved from the web (version, document), if database.url has any.

    Never creates a database; an unreachable or uninitialized one is a note on stderr, not an error
    (the check must run anywhere, e.g. on an admin's laptop)."""
    from sqlalchemy.engine import make_url

    url = ctx.settings.database.url
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and (not u.database or not Path(u.database).is_file()):
        return None

    async def load() -> tuple[int, dict] | None:
        from cti.db.engine import create_engine, sessionmaker
        from cti.routing.store import active

        engine = create_engine(url)
        try:
            v = await active(sessionmaker(engine))
        finally:
            await engine.dispose()
        return (v.version, v.document) if v is not None else None

    try:
        return run(load())
    except Exception as exc:  # noqa: BLE001 - say it and go on with the files
        click.echo(f"note: web-saved routing rules not checked ({type(exc).__name__}: {exc})", err=True)
        return None


@dialplan.command("check")
@click.argument("path", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--no-lint", is_flag=True, help="Skip asterisklint (cti's own checks only).")
@click.option("--no-db", is_flag=True, help="Do not read the routing rules saved from the web (database.url).")
@click.option("-q", "--quiet", is_flag=True, help="Errors only.")
@click.option("--strict", is_flag=True, help="Warnings fail too.")
@pass_ctx
def check_cmd(ctx: Context, path: str | None, no_lint: bool, no_db: bool, quiet: bool, strict: bool) -> None:
    """Check PATH (a checkout with asterisk-config/ + dialplans/, or an /etc/asterisk-like folder;
    default deploy.source_dir), and the routing rules saved from the web when database.url has them.
    Prints FILE:LINE: error|warning[code]: message; exits 1 on errors."""
    from cti.dialplan.checks import check_tree

    saved = None if no_db else _saved_rules(ctx)
    report = check_tree(_tree(path, ctx), ctx.settings, config_file=_config_file(ctx), lint=not no_lint,
                        saved_rules=saved)
    _print_report(report, quiet)
    if report.errors or (strict and report.warnings):
        sys.exit(1)


@dialplan.command("diff")
@click.option("--source", "source", type=click.Path(exists=True, file_okay=False),
              help="What to deploy (default deploy.source_dir).")
@pass_ctx
def diff_cmd(ctx: Context, source: str | None) -> None:
    """Show what a deploy would change in deploy.asterisk_config_dir (unified diff)."""
    from cti.dialplan.deploy import plan_deploy

    plan = plan_deploy(_tree(source, ctx), Path(ctx.settings.deploy.asterisk_config_dir))
    if not plan.changes:
        click.echo(f"no changes: {ctx.settings.deploy.asterisk_config_dir} already holds these files", err=True)
        return
    click.echo(plan.diff(), nl=False)
    click.echo(f"{len(plan.changes)} file(s) would change; reload: {', '.join(plan.reloads)}", err=True)


async def _with_history(ctx: Context, work):
    from cti.db.engine import create_engine
    from cti.dialplan.history import ensure_table, record
    from cti.logs import configure_logging

    configure_logging(ctx.settings.log.level, ctx.settings.log.format)  # logs on stderr, results on stdout

    engine = create_engine(ctx.settings.database.url)
    try:
        try:
            await ensure_table(engine)
        except Exception as exc:
            raise click.ClickException(f"cannot record deploys in database.url ({exc}); nothing done") from None
        outcome = await work()
        try:
            await record(engine, outcome)
        except Exception as exc:
            click.echo(f"warning: the {outcome.action} was not recorded in the database: {exc}", err=True)
        return outcome
    finally:
        await engine.dispose()


def _print_outcome(outcome) -> None:
    written = outcome.result in ("deployed", "rolled_back") or (outcome.action == "rollback" and outcome.result == "failed")
    for name, h in sorted(outcome.files.items()) if written else ():
        before, after = (h["before"] or "-")[:12], (h["after"] or "-")[:12]
        click.echo(f"  {name}: {before} -> {after}")
    click.echo(f"{outcome.action} {outcome.version}: {outcome.result}: {outcome.message}")


@dialplan.command("deploy")
@click.option("--source", "source", type=click.Path(exists=True, file_okay=False),
              help="What to deploy (default deploy.source_dir).")
@click.option("--by", help="Who deploys (default: the login name).")
@click.option("--show-diff", is_flag=True, help="Print the unified diff of what is written.")
@pass_ctx
def deploy_cmd(ctx: Context, source: str | None, by: str | None, show_diff: bool) -> None:
    """Check, write into deploy.asterisk_config_dir, reload what changed, verify; roll back on failure."""
    from cti.dialplan.deploy import DeployError, deploy

    tree = _tree(source, ctx)
    saved = _saved_rules(ctx)  # a deploy must not drop a queue the web-saved rules route to

    async def work():
        return await deploy(ctx.settings, by=_who(by), source=tree, config_file=_config_file(ctx),
                            saved_rules=saved)

    try:
        outcome = run(_with_history(ctx, work))
    except DeployError as exc:
        raise click.ClickException(str(exc)) from None
    if outcome.report is not None and (outcome.report.errors or outcome.report.warnings):
        _print_report(outcome.report, quiet=outcome.result != "refused" and not outcome.report.errors)
    if show_diff and outcome.diff:
        click.echo(outcome.diff, nl=False)
    _print_outcome(outcome)
    if not outcome.ok:
        sys.exit(1)


@dialplan.command("rollback")
@click.option("--by", help="Who rolls back (default: the login name).")
@click.option("--force", is_flag=True, help="Also when the deployed files were edited by hand since.")
@pass_ctx
def rollback_cmd(ctx: Context, by: str | None, force: bool) -> None:
    """Restore the version the last deploy replaced, reload it and verify."""
    from cti.dialplan.deploy import DeployError, rollback

    async def work():
        return await rollback(ctx.settings, by=_who(by), force=force)

    try:
        outcome = run(_with_history(ctx, work))
    except DeployError as exc:
        raise click.ClickException(str(exc)) from None
    _print_outcome(outcome)
    if outcome.result != "rolled_back":
        sys.exit(1)


@dialplan.command("history")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@pass_ctx
def history_cmd(ctx: Context, limit: int) -> None:
    """The latest deploys and rollbacks (who, when, result, files)."""
    from cti.db.engine import create_engine
    from cti.dialplan.history import ensure_table, recent

    async def load():
        engine = create_engine(ctx.settings.database.url)
        try:
            await ensure_table(engine)
            return await recent(engine, limit)
        finally:
            await engine.dispose()

    for row in run(load()):
        click.echo(f"{row['started_at']:%Y-%m-%d %H:%M:%S} {row['action']:8} {row['result']:11} "
                   f"{row['deployed_by']} {row['version']} {', '.join(sorted(row['files']))} {row['message']}")
