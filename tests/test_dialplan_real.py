"""cti dialplan deploy / rollback against a REAL Asterisk (tests/run.sh builds one and sets CTI_ASTERISK_BIN):

    CTI_ASTERISK_BIN=/opt/asterisk/sbin/asterisk pytest tests/test_dialplan_real.py

Asterisk runs in a temporary directory on a copy of the shipped files (AMI port changed); the
deploys go into its configuration directory and are reloaded over AMI as the deploy-only user
``cti-deploy`` (write = config) or with ``asterisk -rx``; what Asterisk runs afterwards is read
with the CLI, independently of cti's own verification.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from asterisk_pbx import BIN, Pbx, requires_asterisk, running_pbx
from cti.config import Settings, load_settings
from cti.dialplan.checks import check_tree
from cti.dialplan.deploy import deploy, rollback
from cti.dialplan.reload import AmiAsterisk, ReloadError

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_SECRET = "change-me-cti-deploy-secret"

pytestmark = [pytest.mark.asterisk, requires_asterisk]


@pytest.fixture(scope="module")
def pbx() -> Iterator[Pbx]:
    with running_pbx("cti-dp-", verbose=2) as running:
        yield running


def settings_for(pbx: Pbx, src: Path, tmp_path: Path, **deploy: object) -> Settings:
    s = load_settings(None, env={})
    values = dict(source_dir=str(src), asterisk_config_dir=str(pbx.etc), backup_dir=str(tmp_path / "backups"),
                  ami_host="127.0.0.1", ami_port=pbx.ami_port, ami_username="cti-deploy", ami_secret=DEPLOY_SECRET,
                  verify_timeout_s=10.0, asterisk_bin=BIN, asterisk_conf=str(pbx.conf))
    values.update(deploy)
    return s.replace("deploy", **values)


def source_copy(pbx: Pbx, tmp_path: Path) -> Path:
    """What the PBX runs now, as an /etc/asterisk-shaped source to edit."""
    src = tmp_path / "src"
    shutil.copytree(pbx.etc, src, ignore=shutil.ignore_patterns(".cti-deploy"))
    return src


def edit(file: Path, old: str, new: str) -> None:
    text = file.read_text()
    assert text.count(old) == 1, old
    file.write_text(text.replace(old, new))


def test_the_running_configuration_passes_the_check(pbx: Pbx) -> None:
    report = check_tree(pbx.etc, load_settings(None, env={}))
    assert report.errors == [], [f.format() for f in report.errors]


async def test_deploy_over_ami_goes_live_keeps_agents_and_rolls_back(pbx: Pbx, tmp_path: Path) -> None:
    src = source_copy(pbx, tmp_path)
    edit(src / "dialplans" / "800-line.conf", "exten => _X.,1,NoOp(cti 800 line)", "exten => _X.,1,NoOp(cti 800 line v2)")
    edit(src / "queues.conf", "[mobile](cti-queue)\nstrategy = rrmemory", "[mobile](cti-queue)\nstrategy = leastrecent")
    # an agent logged in (dynamic member) before the deploy must still be there after the queue reload
    pbx.cli("queue add member Local/1001@phones to mobile penalty 0 as LiNa")
    pbx.cli("queue pause member Local/1001@phones queue mobile reason lunch")
    assert re.search(r"LiNa .*\(paused:lunch", pbx.cli("queue show mobile"))
    settings = settings_for(pbx, src, tmp_path)
    out = await deploy(settings, by="test")
    assert out.result == "deployed", out.message
    assert out.reloads == ["dialplan", "queues"]
    assert "NoOp(cti 800 line v2)" in pbx.cli("dialplan show cti-inbound")
    mobile = pbx.cli("queue show mobile")
    assert "'leastrecent' strategy" in mobile
    assert re.search(r"LiNa .*\(dynamic\).*\(paused:lunch", mobile), mobile  # the agent and the pause survive
    back = await rollback(settings, by="test")
    assert back.result == "rolled_back", back.message
    assert "NoOp(cti 800 line)" in pbx.cli("dialplan show cti-inbound") and "v2" not in pbx.cli("dialplan show cti-inbound")
    assert "'rrmemory' strategy" in pbx.cli("queue show mobile")
    pbx.cli("queue remove member Local/1001@phones from mobile")


async def test_deploy_with_asterisk_rx(pbx: Pbx, tmp_path: Path) -> None:
    src = source_copy(pbx, tmp_path)
    edit(src / "dialplans" / "transfer.conf", "NoOp(cti transfer to a queue)", "NoOp(cti transfer v2)")
    settings = settings_for(pbx, src, tmp_path, reload="cli")
    out = await deploy(settings, by="test")
    assert out.result == "deployed", out.message
    assert "NoOp(cti transfer v2)" in pbx.cli("dialplan show cti-transfer")
    assert (await rollback(settings, by="test")).result == "rolled_back"
    assert "NoOp(cti transfer to a queue)" in pbx.cli("dialplan show cti-transfer")


async def test_verification_catches_a_deploy_asterisk_does_not_run(pbx: Pbx, tmp_path: Path) -> None:
    """deploy.asterisk_config_dir pointing elsewhere than Asterisk's astetcdir: the reload re-reads
    the old files, verification sees the old dialplan, the deploy is rolled back."""
    elsewhere = tmp_path / "not-astetcdir"
    shutil.copytree(pbx.etc, elsewhere, ignore=shutil.ignore_patterns(".cti-deploy"))
    original = (elsewhere / "dialplans" / "800-line.conf").read_bytes()
    src = source_copy(pbx, tmp_path)
    edit(src / "dialplans" / "800-line.conf", "exten => _X.,1,NoOp(cti 800 line)", "exten => _X.,1,NoOp(cti 800 line v3)")
    out = await deploy(settings_for(pbx, src, tmp_path, asterisk_config_dir=str(elsewhere)), by="test")
    assert out.result == "rolled_back"
    assert "context [cti-inbound] differs from the deployed files" in out.message
    assert "v3" in out.message  # the step Asterisk does not run
    assert (elsewhere / "dialplans" / "800-line.conf").read_bytes() == original
    assert "v3" not in pbx.cli("dialplan show cti-inbound")


async def test_manager_change_that_would_lock_out_the_deploy_user_is_rolled_back(pbx: Pbx, tmp_path: Path) -> None:
    src = source_copy(pbx, tmp_path)
    edit(src / "manager.conf", f"secret = {DEPLOY_SECRET}", "secret = change-me-other-secret")
    settings = settings_for(pbx, src, tmp_path)
    out = await deploy(settings, by="test")
    assert out.reloads == ["manager"]
    assert out.result == "rolled_back", out.message
    assert "after the manager reload" in out.message and "refused" in out.message
    ami = await AmiAsterisk("127.0.0.1", pbx.ami_port, "cti-deploy", DEPLOY_SECRET).connect()  # still works
    await ami.close()
    with pytest.raises(ReloadError):
        await (await AmiAsterisk("127.0.0.1", pbx.ami_port, "cti-deploy", "change-me-other-secret").connect()).close()


async def test_manager_change_is_reloaded(pbx: Pbx, tmp_path: Path) -> None:
    src = source_copy(pbx, tmp_path)
    settings = settings_for(pbx, src, tmp_path)
    # v1 states the key explicitly: Asterisk keeps a user's old value when a key is REMOVED from
    # manager.conf on reload (seen on 22.10.1), so only an explicit value can be rolled back to.
    edit(src / "manager.conf", "write = config\n", "write = config\ndisplayconnects = yes\n")
    assert (await deploy(settings, by="test")).result == "deployed"
    edit(src / "manager.conf", "write = config\ndisplayconnects = yes\n", "write = config\ndisplayconnects = no\n")
    out = await deploy(settings, by="test")
    assert out.result == "deployed", out.message
    assert out.reloads == ["manager"]
    assert re.search(r"displayconnects: no", pbx.cli("manager show user cti-deploy"))
    assert (await rollback(settings, by="test")).result == "rolled_back"
    assert re.search(r"displayconnects: yes", pbx.cli("manager show user cti-deploy"))
    assert (await rollback(settings, by="test")).result == "rolled_back"  # back to the shipped file


def test_the_daemon_user_still_cannot_reload(pbx: Pbx) -> None:
    user = pbx.cli("manager show user cti")
    assert re.search(r"write perm: call,agent,reporting,originate\s*$", user, re.M), user
    deployer = pbx.cli("manager show user cti-deploy")
    assert re.search(r"write perm: config\s*$", deployer, re.M) and re.search(r"read perm: <none>", deployer), deployer
