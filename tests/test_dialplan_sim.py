"""cti dialplan deploy against the simulated PBX (cti/sim) over real AMI on loopback.

The simulated PBX answers ``Reload`` like Asterisk but cannot show its dialplan (no
``ShowDialPlan``, no ``QueueReload``: its dialplan is built in, not read from files). A deploy to
it must therefore never be called good: it logs in as the deploy user, reloads, finds it cannot
verify, and puts the previous files back. (Success against Asterisk itself:
tests/test_dialplan_real.py; against an Asterisk-like peer: tests/test_dialplan_deploy.py.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

from cti.config import load_settings
from cti.dialplan.deploy import deploy
from cti.sim.config import AmiUser, SimConfig, default_users, parse_classes
from cti.sim.pbx import SimPbx

ROOT = Path(__file__).resolve().parent.parent


async def test_a_pbx_that_cannot_show_its_dialplan_never_gets_a_deploy_marked_good(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    shutil.copytree(ROOT / "asterisk-config", etc)
    shutil.copytree(ROOT / "dialplans", etc / "dialplans")
    src = tmp_path / "src"
    shutil.copytree(etc, src)
    plan = src / "dialplans" / "800-line.conf"
    plan.write_text(plan.read_text().replace("NoOp(cti 800 line)", "NoOp(cti 800 line v2)", 1))
    original = (etc / "dialplans" / "800-line.conf").read_bytes()
    users = {**default_users(), "cti-deploy": AmiUser("deploy-secret", read=frozenset(), write=parse_classes("config"))}
    pbx = SimPbx(SimConfig(ami_port=0, users=users, seed=1))
    await pbx.start()
    try:
        settings = load_settings(None, env={}).replace(
            "deploy", source_dir=str(src), asterisk_config_dir=str(etc), backup_dir=str(tmp_path / "backups"),
            ami_host="127.0.0.1", ami_port=pbx.ami_port, ami_username="cti-deploy", ami_secret="deploy-secret",
            verify_timeout_s=5.0)
        out = await deploy(settings, by="test")
    finally:
        await pbx.stop()
    # reloaded, unverifiable, restored, and the restore is unverifiable too: "failed", never "deployed"
    assert out.result == "failed"
    assert "Invalid/unknown command: ShowDialPlan" in out.message and "restoring the previous version failed too" in out.message
    assert (etc / "dialplans" / "800-line.conf").read_bytes() == original
