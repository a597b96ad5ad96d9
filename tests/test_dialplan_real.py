"""cti dialplan deploy / rollback against a REAL Asterisk (skipped without CTI_ASTERISK_BIN):

    CTI_ASTERISK_BIN=/opt/asterisk/sbin/asterisk pytest tests/test_dialplan_real.py

Asterisk runs in a temporary directory on a copy of the shipped files (AMI port changed); the
deploys go into its configuration directory and are reloaded over AMI as the deploy-only user
``cti-deploy`` (write = config) or with ``asterisk -rx``; what Asterisk runs afterwards is read
with the CLI, independently of cti's own verification.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from cti.config import Settings, load_settings
from cti.dialplan.checks import check_tree
from cti.dialplan.deploy import deploy, rollback
from cti.dialplan.reload import AmiAsterisk, ReloadError

ROOT = Path(__file__).resolve().parent.parent
BIN = os.environ.get("CTI_ASTERISK_BIN", "")
DEPLOY_SECRET = "change-me-cti-deploy-secret"

pytestmark = [
    pytest.mark.asterisk,
    pytest.mark.skipif(not (BIN and os.access(BIN, os.X_OK)), reason="CTI_ASTERISK_BIN does not name an asterisk binary"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _module_dir(binary: Path) -> Path:
    prefix = binary.resolve().parent.parent
    for c in (os.environ.get("CTI_ASTERISK_MODDIR", ""), str(prefix / "lib" / "asterisk" / "modules"),
              str(prefix / "lib64" / "asterisk" / "modules"), "/usr/lib/asterisk/modules"):
        if c and (Path(c) / "app_queue.so").exists():
            return Path(c)
    pytest.fail(f"no Asterisk modules found next to {binary} (set CTI_ASTERISK_MODDIR)")


class Pbx:
    def __init__(self, root: Path, etc: Path, conf: Path, ami_port: int) -> None:
        self.root, self.etc, self.conf, self.ami_port = root, etc, conf, ami_port

    def cli(self, command: str) -> str:
        return subprocess.run([BIN, "-C", str(self.conf), "-rx", command], capture_output=True, text=True, timeout=15).stdout


@pytest.fixture(scope="module")
def pbx() -> Iterator[Pbx]:
    binary = Path(BIN)
    root = Path(tempfile.mkdtemp(prefix="cti-dp-"))
    etc = root / "etc"
    shutil.copytree(ROOT / "asterisk-config", etc)
    shutil.copytree(ROOT / "dialplans", etc / "dialplans")
    ami_port = _free_port()
    manager = etc / "manager.conf"
    manager.write_text(re.sub(r"^port = 5038$", f"port = {ami_port}", manager.read_text(), count=1, flags=re.M))
    for d in ("lib", "db", "keys", "agi-bin", "spool", "run", "log", "cache", "data"):
        (root / d).mkdir(parents=True, exist_ok=True)
    prefix = binary.resolve().parent.parent
    for docs in (prefix / "var" / "lib" / "asterisk" / "documentation", Path("/var/lib/asterisk/documentation"),
                 Path("/usr/share/asterisk/documentation")):
        if (docs / "core-en_US.xml").exists():  # without it Asterisk 22 refuses to start (stasis)
            (root / "data" / "documentation").symlink_to(docs)
            break
    conf = root / "asterisk.conf"
    conf.write_text(
        "[directories]\n"
        f"astcachedir => {root}/cache\nastetcdir => {etc}\nastmoddir => {_module_dir(binary)}\n"
        f"astvarlibdir => {root}/lib\nastdbdir => {root}/db\nastkeydir => {root}/keys\n"
        f"astdatadir => {root}/data\nastagidir => {root}/agi-bin\nastspooldir => {root}/spool\n"
        f"astrundir => {root}/run\nastlogdir => {root}/log\nastsbindir => {binary.resolve().parent}\n"
        "[options]\nverbose = 2\n")
    out = open(root / "stdout.txt", "wb")
    process = subprocess.Popen([BIN, "-C", str(conf), "-f", "-n"], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    pbx = Pbx(root, etc, conf, ami_port)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"asterisk exited with {process.returncode}: {(root / 'stdout.txt').read_text(errors='replace')[-3000:]}")
            if (root / "run" / "asterisk.ctl").exists() and "Asterisk" in pbx.cli("core show version"):
                if subprocess.run([BIN, "-C", str(conf), "-rx", "core waitfullybooted"], capture_output=True, timeout=30).returncode == 0:
                    break
            if time.monotonic() > deadline:
                pytest.fail("asterisk did not boot within 60 s")
            time.sleep(0.2)
        yield pbx
    finally:
        if process.poll() is None:
            try:
                pbx.cli("core stop now")
                process.wait(timeout=15)
            except (subprocess.TimeoutExpired, OSError):
                process.kill()
                process.wait(timeout=5)
        out.close()
        shutil.rmtree(root, ignore_errors=True)


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
