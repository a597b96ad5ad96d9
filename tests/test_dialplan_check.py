"""cti dialplan check: the shipped configuration is clean; each deliberate breakage is an error
at the right file and line (cti's cross-checks and asterisklint alike)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cti.cli import main
from cti.config import Settings, load_settings
from cti.dialplan.checks import SERVED_ROUTES, Report, check_tree
from cti.dialplan.tree import ConfigTree

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def defaults() -> Settings:
    return load_settings(None, env={})


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A checkout-shaped copy of the shipped configuration to break."""
    root = tmp_path / "cfg"
    shutil.copytree(ROOT / "asterisk-config", root / "asterisk-config")
    shutil.copytree(ROOT / "dialplans", root / "dialplans")
    return root


def edit(file: Path, old: str, new: str) -> int:
    """Replace the one occurrence of ``old`` in ``file``; return the line number of the change."""
    text = file.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {file}"
    line = text[: text.index(old)].count("\n") + 1
    file.write_text(text.replace(old, new))
    return line


def errors(report: Report, code: str | None = None) -> list[tuple[str, int | None, str]]:
    return [(f.file.name if f.file else "", f.line, f.code) for f in report.errors if code is None or f.code == code]


def test_shipped_configuration_has_no_error(defaults: Settings) -> None:
    report = check_tree(ROOT, defaults)
    assert report.errors == [], [f.format() for f in report.errors]
    # the only warnings: the placeholder AMI secrets the admin must change
    assert {(f.code, f.file.name) for f in report.warnings} == {("ami-secret", "manager.conf")}


def test_an_etc_asterisk_layout_is_checked_the_same(tmp_path: Path, defaults: Settings) -> None:
    etc = tmp_path / "etc"
    shutil.copytree(ROOT / "asterisk-config", etc)
    shutil.copytree(ROOT / "dialplans", etc / "dialplans")
    tree = ConfigTree.at(etc)
    assert set(tree.files) >= {"extensions.conf", "queues.conf", "manager.conf", "dialplans/800-line.conf"}
    assert check_tree(tree, defaults).errors == []


def test_queue_missing_from_queues_conf(copy: Path, defaults: Settings) -> None:
    line = edit(copy / "dialplans" / "transfer.conf", "Queue(${CTI_QUEUE},t)", "Queue(sales,t)")
    report = check_tree(copy, defaults)
    assert ("transfer.conf", line, "queue-unknown") in errors(report)


def test_default_queue_missing_from_queues_conf(copy: Path, defaults: Settings) -> None:
    line = edit(copy / "asterisk-config" / "extensions.conf", "DEFAULT_QUEUE=appliances", "DEFAULT_QUEUE=applainces")
    report = check_tree(copy, defaults)
    assert ("extensions.conf", line, "queue-unknown") in errors(report)


def test_routing_rule_names_a_queue_that_queues_conf_lacks(copy: Path, defaults: Settings, tmp_path: Path) -> None:
    settings = defaults.replace("routing", queues=("complaints", "appliances", "mobile", "sales"), ivr={"4": "sales"})
    report = check_tree(copy, settings, config_file=tmp_path / "cti.toml")
    found = [f for f in report.errors if f.code == "queue-unknown"]
    assert {f.file for f in found} == {tmp_path / "cti.toml"}
    assert any("routing.ivr.4" in f.message for f in found) and any("routing.queues" in f.message for f in found)


def test_a_queue_removed_from_queues_conf(copy: Path, defaults: Settings) -> None:
    edit(copy / "asterisk-config" / "queues.conf", "[mobile](cti-queue)\nstrategy", "[mobiles](cti-queue)\nstrategy")
    report = check_tree(copy, defaults)
    assert any(f.code == "queue-unknown" and "'mobile'" in f.message for f in report.errors)
    assert any(f.code == "queue-unused" and f.file.name == "queues.conf" for f in report.warnings)


def test_agi_route_typo(copy: Path, defaults: Settings) -> None:
    line = edit(copy / "dialplans" / "800-line.conf", "${CTI_PORT}/ivr,", "${CTI_PORT}/ivrr,")
    report = check_tree(copy, defaults)
    assert errors(report, "agi-route") == [("800-line.conf", line, "agi-route")]
    assert "ivrr" in report.errors[0].message or any("ivrr" in f.message for f in report.errors)


def test_agi_to_another_port_than_cti_listens_on_is_a_warning(copy: Path, defaults: Settings) -> None:
    line = edit(copy / "asterisk-config" / "extensions.conf", "CTI_PORT=4573", "CTI_PORT=4574")
    report = check_tree(copy, defaults)
    assert report.errors == []
    assert {(f.file.name, f.code) for f in report.warnings if f.code == "agi-target"} == {("800-line.conf", "agi-target")}
    assert line > 0


def test_goto_to_a_missing_context(copy: Path, defaults: Settings) -> None:
    line = edit(copy / "dialplans" / "800-line.conf", "Goto(cti-inbound,${EXTEN:1},1)", "Goto(cti-inbond,${EXTEN:1},1)")
    report = check_tree(copy, defaults)
    assert ("800-line.conf", line, "goto-target") in errors(report)


def test_gotoif_to_a_missing_label(copy: Path, defaults: Settings) -> None:
    line = edit(copy / "dialplans" / "800-line.conf", '""]?use-default)', '""]?use-defualt)')
    report = check_tree(copy, defaults)
    assert ("800-line.conf", line, "goto-target") in errors(report)


def test_goto_to_a_missing_extension(copy: Path, defaults: Settings) -> None:
    line = edit(copy / "asterisk-config" / "extensions.conf", "Goto(cti-inbound,s,1)", "Goto(cti-transfer,s,1)")
    report = check_tree(copy, defaults)
    assert ("extensions.conf", line, "goto-target") in errors(report)


def test_include_of_a_missing_context(copy: Path, defaults: Settings) -> None:
    line = edit(copy / "dialplans" / "phones.conf", "include => cti-transfer", "include => cti-transfers")
    report = check_tree(copy, defaults)
    assert ("phones.conf", line, "goto-target") in errors(report)


def test_missing_fallback_after_the_agi(copy: Path, defaults: Settings) -> None:
    plan = copy / "dialplans" / "800-line.conf"
    agi_line = plan.read_text().splitlines().index(" same => n,AGI(agi://${CTI_HOST}:${CTI_PORT}/incoming)") + 1
    edit(plan, ' same => n,GotoIf($["${CTI_QUEUE}" = ""]?queue)\n', "")
    report = check_tree(copy, defaults)
    assert errors(report, "fallback") == [("800-line.conf", agi_line, "fallback")]


def test_fallback_keyed_on_agistatus_is_not_a_fallback(copy: Path, defaults: Settings) -> None:
    plan = copy / "dialplans" / "800-line.conf"
    agi_line = plan.read_text().splitlines().index(" same => n,AGI(agi://${CTI_HOST}:${CTI_PORT}/incoming)") + 1
    edit(plan, 'GotoIf($["${CTI_QUEUE}" = ""]?queue)', 'GotoIf($["${AGISTATUS}" != "SUCCESS"]?queue)')
    report = check_tree(copy, defaults)
    assert ("800-line.conf", agi_line, "fallback") in errors(report)


def test_fallback_that_reaches_the_wrong_queue(copy: Path, defaults: Settings) -> None:
    edit(copy / "dialplans" / "800-line.conf", "n(use-default),Set(CTI_QUEUE=${DEFAULT_QUEUE})", "n(use-default),Set(CTI_QUEUE=mobile)")
    report = check_tree(copy, defaults)
    assert any(f.code == "fallback" and "'mobile'" in f.message for f in report.errors)


def test_missing_800_line_context(copy: Path, defaults: Settings) -> None:
    edit(copy / "dialplans" / "800-line.conf", "\n[cti-inbound]\n", "\n[cti-inbound-old]\n")
    report = check_tree(copy, defaults)
    assert any(f.code == "fallback" and "[cti-inbound]" in f.message for f in report.errors)
    assert errors(report, "goto-target")  # from-pstn's Goto(cti-inbound,...) now points nowhere


def test_daemon_ami_user_with_the_dialplan_read_class(copy: Path, defaults: Settings) -> None:
    line = edit(copy / "asterisk-config" / "manager.conf", "read = system,call,agent,user,reporting", "read = system,call,agent,user,reporting,dialplan")
    report = check_tree(copy, defaults)
    assert errors(report, "ami-privilege") == [("manager.conf", line, "ami-privilege")]


@pytest.mark.parametrize("extra", ["system", "command", "config", "all"])
def test_daemon_ami_user_with_too_broad_write_classes(copy: Path, defaults: Settings, extra: str) -> None:
    line = edit(copy / "asterisk-config" / "manager.conf", "write = call,agent,originate,reporting", f"write = call,agent,originate,reporting,{extra}")
    report = check_tree(copy, defaults)
    assert errors(report, "ami-privilege") == [("manager.conf", line, "ami-privilege")]


def test_daemon_ami_user_missing_a_class_it_needs(copy: Path, defaults: Settings) -> None:
    line = edit(copy / "asterisk-config" / "manager.conf", "write = call,agent,originate,reporting", "write = call,originate,reporting")
    report = check_tree(copy, defaults)
    assert errors(report, "ami-privilege") == [("manager.conf", line, "ami-privilege")]
    assert "agent" in report.errors[0].message


def test_deploy_user_with_command_write_class(copy: Path, defaults: Settings) -> None:
    line = edit(copy / "asterisk-config" / "manager.conf", "write = config\n", "write = config,command\n")
    report = check_tree(copy, defaults)
    assert errors(report, "ami-privilege") == [("manager.conf", line, "ami-privilege")]


def test_missing_daemon_ami_user(copy: Path, defaults: Settings) -> None:
    report = check_tree(copy, defaults.replace("ami", username="cti-ops"))
    assert errors(report, "ami-privilege") == [("manager.conf", None, "ami-privilege")]


def test_asterisklint_error_with_file_and_line(copy: Path, defaults: Settings) -> None:
    line = edit(copy / "dialplans" / "800-line.conf", " same => n,Answer()", " same => n,Answr()")
    report = check_tree(copy, defaults)
    assert ("800-line.conf", line, "asterisklint:E_APP_MISSING") in errors(report)
    # and the check leaves asterisklint's global state clean for the next run
    assert check_tree(ROOT, defaults).errors == []


def test_a_line_asterisk_cannot_read(copy: Path, defaults: Settings) -> None:
    line = edit(copy / "dialplans" / "phones.conf", " same => n,Hangup()", " same => 7,Hangup()")
    report = check_tree(copy, defaults, lint=False)
    assert errors(report) == [("phones.conf", line, "parse")]


def test_a_missing_include(copy: Path, defaults: Settings) -> None:
    line = edit(copy / "asterisk-config" / "extensions.conf", "#include dialplans/phones.conf", "#include dialplans/phone.conf")
    report = check_tree(copy, defaults, lint=False)
    assert ("extensions.conf", line, "parse") in errors(report)


def test_served_routes_are_the_daemons() -> None:
    from cti.routing.inbound import InboundRoutes

    served = InboundRoutes(None, None, region="CN", sound_prefix="cti").routes()  # type: ignore[arg-type]
    assert set(served) == SERVED_ROUTES


def test_cli_prints_file_line_and_exits_non_zero(copy: Path) -> None:
    line = edit(copy / "dialplans" / "800-line.conf", "${CTI_PORT}/ivr,", "${CTI_PORT}/ivrr,")
    result = CliRunner().invoke(main, ["dialplan", "check", str(copy)], env={"CTI_CONFIG": ""})
    assert result.exit_code == 1, result.output
    assert f"800-line.conf:{line}: error[agi-route]" in result.output


def test_cli_on_the_shipped_configuration(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["dialplan", "check", "-q", str(ROOT)], env={"CTI_CONFIG": ""})
    assert result.exit_code == 0, result.output
    assert "error" not in result.stdout
    strict = CliRunner().invoke(main, ["dialplan", "check", "--strict", str(ROOT)], env={"CTI_CONFIG": ""})
    assert strict.exit_code == 1 and "warning[ami-secret]" in strict.stdout


def test_missing_deploy_user_is_a_warning_unless_deploys_use_the_cli(copy: Path, defaults: Settings) -> None:
    text = (copy / "asterisk-config" / "manager.conf").read_text()
    (copy / "asterisk-config" / "manager.conf").write_text(text[: text.index("[cti-deploy]")])
    report = check_tree(copy, defaults)
    assert report.errors == []
    assert any(f.code == "ami-privilege" and "[cti-deploy]" in f.message for f in report.warnings)
    cli = check_tree(copy, defaults.replace("deploy", reload="cli"))
    assert not any("[cti-deploy]" in f.message for f in cli.warnings)


def test_deploying_as_the_daemons_user_is_an_error(copy: Path, defaults: Settings) -> None:
    report = check_tree(copy, defaults.replace("deploy", ami_username="cti"))
    assert any(f.code == "ami-privilege" and "daemon's user" in f.message for f in report.errors)


def test_web_saved_routing_rules_are_checked_too(copy: Path, defaults: Settings) -> None:
    from cti.routing.store import document_from_config

    doc = document_from_config(defaults.routing)
    assert check_tree(copy, defaults, saved_rules=(3, doc)).errors == []
    doc["queues"].append("sales")
    doc["ivr"]["4"] = "sales"
    found = [f for f in check_tree(copy, defaults, saved_rules=(3, doc)).errors if f.code == "queue-unknown"]
    assert {str(f.file) for f in found} == {"<database: routing rules v3, saved from the web>"}
    assert sorted(f.message.split(" = ")[0] for f in found) == ["ivr.4", "queues"]


def test_check_command_reads_the_rules_saved_in_the_database(copy: Path, defaults: Settings, tmp_path: Path) -> None:
    import asyncio

    from cti.db.engine import create_engine, sessionmaker
    from cti.db.schema import init_schema
    from cti.routing.store import document_from_config, save

    url = f"sqlite+aiosqlite:///{tmp_path}/cti.db"
    doc = document_from_config(defaults.routing)
    doc["queues"].append("sales")
    doc["dids"]["4008009999"] = "sales"

    async def prepare() -> None:
        engine = create_engine(url)
        try:
            await init_schema(engine)
            await save(sessionmaker(engine), doc, created_by="admin")
        finally:
            await engine.dispose()

    asyncio.run(prepare())
    runner = CliRunner()
    env = {"CTI_DATABASE_URL": url}
    res = runner.invoke(main, ["dialplan", "check", "--no-lint", str(copy)], env=env)
    assert res.exit_code == 1, res.output
    assert "routing rules v1, saved from the web" in res.output and "dids.4008009999 = 'sales'" in res.output
    assert runner.invoke(main, ["dialplan", "check", "--no-lint", "--no-db", str(copy)], env=env).exit_code == 0
    # no database file: nothing is created, the files alone are checked
    missing = tmp_path / "none.db"
    res = runner.invoke(main, ["dialplan", "check", "--no-lint", str(copy)],
                        env={"CTI_DATABASE_URL": f"sqlite+aiosqlite:///{missing}"})
    assert res.exit_code == 0 and not missing.exists()
