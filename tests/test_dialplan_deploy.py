"""cti dialplan deploy / rollback / diff against a temporary Asterisk configuration directory and
an AMI peer on loopback that behaves like Asterisk 22 for the actions a deploy uses.

The peer (:class:`AmiPeer`) speaks the bytes of ``shared/asterisk-captures/ami-reload.*`` and
``ami-actions.*`` (banner, MD5 challenge login, ``Reload`` -> ``Module Reloaded``, list responses
of ``ShowDialPlan``/``QueueStatus``, ``Did not find context``, ``Permission denied``). Like
Asterisk it reads its configuration directory only when asked to reload: ``Reload pbx_config.so``
re-reads extensions.conf, ``QueueReload`` queues.conf, ``Reload manager`` manager.conf (its users,
secrets and write classes). ``stale=True`` plays an Asterisk that answers "Module Reloaded" but
keeps running the old files (e.g. it reads another directory than the one deployed into).
The capture replay test at the end feeds AmiAsterisk the captured bytes themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cti.config import Settings, load_settings
from cti.dialplan.conf import read_conf
from cti.dialplan.deploy import DeployError, deploy, deploy_lock, list_versions, plan_deploy, rollback
from cti.dialplan.history import ensure_table, recent, record
from cti.dialplan.model import build_dialplan
from cti.dialplan.reload import AmiAsterisk, ReloadError
from cti.dialplan.tree import ConfigTree

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_SECRET = "change-me-cti-deploy-secret"  # the placeholder shipped in manager.conf
CHALLENGE = "41400581"  # as in ami-login-md5


def _frame(*pairs: tuple[str, object]) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in pairs) + b"\r\n"


@dataclass
class AmiPeer:
    """An Asterisk-like AMI server for deploys: reads ``etc`` on reload, answers like the captures."""

    etc: Path
    stale: bool = False
    connections: int = 0
    actions: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    contexts: dict = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)
    users: dict[str, tuple[str, set[str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._load_dialplan()
        self._load_queues()
        self._load_users()

    def _load_dialplan(self) -> None:
        plan = build_dialplan(read_conf(self.etc / "extensions.conf", (self.etc,)))
        self.contexts = {
            name: ([(ext.name, i, s.app, s.data) for ext in extens.values() for i, s in enumerate(ext.steps, 1)],
                   plan.includes.get(name, []))
            for name, extens in plan.contexts.items()
        }

    def _load_queues(self) -> None:
        self.queues = {s.name: s.first("strategy") or "ringall" for s in read_conf(self.etc / "queues.conf", (self.etc,))
                       if not s.is_template and s.name != "general"}

    def _load_users(self) -> None:
        self.users = {s.name: (s.get("secret") or "", {c.strip() for c in (s.get("write") or "").split(",") if c.strip()})
                      for s in read_conf(self.etc / "manager.conf", (self.etc,)) if s.name != "general"}

    async def start(self) -> "AmiPeer":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    def names(self) -> list[str]:
        return [f"{a} {h.get('Module', h.get('Context', ''))}".strip() for a, h in self.actions]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        user: str | None = None
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                headers: dict[str, str] = {}
                for line in raw.decode().split("\r\n"):
                    k, sep, v = line.partition(": ")
                    if sep:
                        headers.setdefault(k, v)
                action, aid = headers.get("Action", ""), headers.get("ActionID", "")
                self.actions.append((action, headers))
                if action == "Challenge":
                    writer.write(_frame(("Response", "Success"), ("ActionID", aid), ("Challenge", CHALLENGE)))
                elif action == "Login":
                    name = headers.get("Username", "")
                    secret, _ = self.users.get(name, ("\x00", set()))
                    if headers.get("Key") == hashlib.md5((CHALLENGE + secret).encode()).hexdigest():
                        user = name
                        writer.write(_frame(("Response", "Success"), ("ActionID", aid), ("Message", "Authentication accepted")))
                    else:
                        writer.write(_frame(("Response", "Error"), ("ActionID", aid), ("Message", "Authentication failed")))
                        await writer.drain()
                        return
                elif action == "Logoff":
                    writer.write(_frame(("Response", "Goodbye"), ("ActionID", aid), ("Message", "Thanks for all the fish.")))
                    await writer.drain()
                    return
                elif user is None:
                    writer.write(_frame(("Response", "Error"), ("ActionID", aid), ("Message", "Permission denied")))
                else:
                    self._act(action, aid, headers, self.users.get(user, ("", set()))[1], writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    def _act(self, action: str, aid: str, h: dict[str, str], write: set[str], w: asyncio.StreamWriter) -> None:
        denied = _frame(("Response", "Error"), ("ActionID", aid), ("Message", "Permission denied"))
        if action == "Reload":
            if not write & {"system", "config", "all"}:
                w.write(denied)
                return
            module = h.get("Module", "")
            if module not in ("pbx_config.so", "manager", "app_queue.so"):
                w.write(_frame(("Response", "Error"), ("ActionID", aid), ("Message", "No such module")))
                return
            if not self.stale:
                {"pbx_config.so": self._load_dialplan, "manager": self._load_users, "app_queue.so": self._load_queues}[module]()
            w.write(_frame(("Response", "Success"), ("ActionID", aid), ("Message", "Module Reloaded")))
        elif action == "QueueReload":
            if not self.stale:
                self._load_queues()
            w.write(_frame(("Response", "Success"), ("ActionID", aid), ("Message", "Queue reloaded successfully")))
        elif action == "ShowDialPlan":
            if not write & {"config", "reporting", "all"}:
                w.write(denied)
                return
            name = h.get("Context", "")
            if name not in self.contexts:
                w.write(_frame(("Response", "Error"), ("ActionID", aid), ("Message", f"Did not find context {name}")))
                return
            entries, includes = self.contexts[name]
            w.write(_frame(("Response", "Success"), ("ActionID", aid), ("EventList", "start"), ("Message", "DialPlan list will follow")))
            for inc in includes:
                w.write(_frame(("Event", "ListDialplan"), ("ActionID", aid), ("Context", name), ("IncludeContext", inc), ("Registrar", "pbx_config")))
            for exten, prio, app, data in entries:
                w.write(_frame(("Event", "ListDialplan"), ("ActionID", aid), ("Context", name), ("Extension", exten),
                               ("Priority", prio), ("Application", app), ("AppData", data), ("Registrar", "pbx_config")))
            w.write(_frame(("Event", "ShowDialPlanComplete"), ("ActionID", aid), ("EventList", "Complete"),
                           ("ListItems", len(entries) + len(includes)), ("ListExtensions", len({e[0] for e in entries})),
                           ("ListPriorities", len(entries)), ("ListContexts", 1)))
        elif action == "QueueStatus":
            w.write(_frame(("Response", "Success"), ("ActionID", aid), ("EventList", "start"), ("Message", "Queue status will follow")))
            for name, strategy in self.queues.items():
                w.write(_frame(("Event", "QueueParams"), ("Queue", name), ("Max", 0), ("Strategy", strategy), ("Calls", 0),
                               ("Holdtime", 0), ("TalkTime", 0), ("Completed", 0), ("Abandoned", 0), ("ServiceLevel", 20),
                               ("ServicelevelPerf", "0.0"), ("ServicelevelPerf2", "0.0"), ("Weight", 0), ("ActionID", aid)))
            w.write(_frame(("Event", "QueueStatusComplete"), ("ActionID", aid), ("EventList", "Complete"), ("ListItems", len(self.queues))))
        else:
            w.write(_frame(("Response", "Error"), ("ActionID", aid),
                           ("Message", f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands.")))


# --------------------------------------------------------------------------- fixtures


def _etc_copy(dest: Path) -> Path:
    shutil.copytree(ROOT / "asterisk-config", dest)
    shutil.copytree(ROOT / "dialplans", dest / "dialplans")
    return dest


def _checkout_copy(dest: Path) -> Path:
    shutil.copytree(ROOT / "asterisk-config", dest / "asterisk-config")
    shutil.copytree(ROOT / "dialplans", dest / "dialplans")
    return dest


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*.conf"))}


def edit(file: Path, old: str, new: str) -> None:
    text = file.read_text()
    assert text.count(old) == 1, old
    file.write_text(text.replace(old, new))


@dataclass
class World:
    etc: Path
    src: Path
    backups: Path
    peer: AmiPeer
    settings: Settings
    original: dict[str, bytes]


@pytest.fixture
async def world(tmp_path: Path):
    etc = _etc_copy(tmp_path / "etc")
    src = _checkout_copy(tmp_path / "src")
    (etc / "dialplans" / "800-line.conf").chmod(0o640)
    peer = await AmiPeer(etc).start()
    s = load_settings(None, env={})
    s = s.replace("deploy", source_dir=str(src), asterisk_config_dir=str(etc), backup_dir=str(tmp_path / "backups"),
                  ami_host="127.0.0.1", ami_port=peer.port, ami_username="cti-deploy", ami_secret=DEPLOY_SECRET,
                  verify_timeout_s=5.0)
    try:
        yield World(etc, src, tmp_path / "backups", peer, s, snapshot(etc))
    finally:
        await peer.stop()


def change_line_and_queue(src: Path) -> None:
    """A dialplan change and a queue strategy change (no manager.conf change)."""
    edit(src / "dialplans" / "800-line.conf", "exten => _X.,1,NoOp(cti 800 line)", "exten => _X.,1,NoOp(cti 800 line v2)")
    edit(src / "asterisk-config" / "queues.conf", "[mobile](cti-queue)\nstrategy = rrmemory", "[mobile](cti-queue)\nstrategy = leastrecent")


# --------------------------------------------------------------------------- deploy


async def test_deploy_writes_reloads_only_what_changed_and_verifies(world: World) -> None:
    change_line_and_queue(world.src)
    out = await deploy(world.settings, by="admin")
    assert out.result == "deployed", out.message
    assert snapshot(world.etc) == {**world.original,
                                   "dialplans/800-line.conf": (world.src / "dialplans" / "800-line.conf").read_bytes(),
                                   "queues.conf": (world.src / "asterisk-config" / "queues.conf").read_bytes()}
    assert out.reloads == ["dialplan", "queues"]
    reloads = [n for n in world.peer.names() if n.startswith(("Reload", "QueueReload"))]
    assert reloads == ["Reload pbx_config.so", "QueueReload"]  # no manager reload: manager.conf did not change
    assert "ShowDialPlan cti-inbound" in world.peer.names() and "QueueStatus" in world.peer.names()
    assert world.peer.queues["mobile"] == "leastrecent"
    assert ("_X.", 1, "NoOp", "cti 800 line v2") in world.peer.contexts["cti-inbound"][0]
    # file mode kept, previous version kept
    assert (world.etc / "dialplans" / "800-line.conf").stat().st_mode & 0o777 == 0o640
    (version,) = list_versions(world.backups)
    assert version.manifest["result"] == "deployed" and version.manifest["by"] == "admin"
    assert (version.dir / "before" / "queues.conf").read_bytes() == world.original["queues.conf"]
    h = out.files["queues.conf"]
    assert h["before"] == hashlib.sha256(world.original["queues.conf"]).hexdigest()
    assert h["after"] == hashlib.sha256((world.etc / "queues.conf").read_bytes()).hexdigest()
    assert not list(world.etc.rglob("*.cti-tmp"))


async def test_a_second_identical_deploy_changes_and_reloads_nothing(world: World) -> None:
    change_line_and_queue(world.src)
    assert (await deploy(world.settings, by="admin")).result == "deployed"
    before = len(world.peer.actions)
    again = await deploy(world.settings, by="admin")
    assert again.result == "unchanged" and again.files == {}
    assert len(world.peer.actions) == before  # not even a connection


async def test_check_errors_refuse_the_deploy_before_anything_is_touched(world: World) -> None:
    change_line_and_queue(world.src)
    edit(world.src / "dialplans" / "800-line.conf", "${CTI_PORT}/ivr,", "${CTI_PORT}/ivrr,")
    out = await deploy(world.settings, by="admin")
    assert out.result == "refused"
    assert any(f.code == "agi-route" for f in out.report.errors)
    assert snapshot(world.etc) == world.original
    assert world.peer.connections == 0 and not world.backups.exists()


async def test_unreachable_asterisk_writes_nothing(world: World) -> None:
    change_line_and_queue(world.src)
    await world.peer.stop()
    out = await deploy(world.settings, by="admin")
    assert out.result == "failed" and "cannot reach AMI" in out.message and "nothing written" in out.message
    assert snapshot(world.etc) == world.original


async def test_wrong_deploy_secret_writes_nothing(world: World) -> None:
    change_line_and_queue(world.src)
    out = await deploy(world.settings.replace("deploy", ami_secret="wrong"), by="admin")
    assert out.result == "failed" and "refused" in out.message
    assert snapshot(world.etc) == world.original


async def test_verification_failure_rolls_back_automatically(world: World) -> None:
    change_line_and_queue(world.src)
    world.peer.stale = True  # answers "Module Reloaded" but keeps running the old files
    out = await deploy(world.settings, by="admin")
    assert out.result == "rolled_back"
    assert "[cti-inbound] differs" in out.message and "'mobile' runs with strategy 'rrmemory'" in out.message
    assert "previous version restored and reloaded" in out.message
    assert snapshot(world.etc) == world.original
    reloads = [n for n in world.peer.names() if n.startswith(("Reload", "QueueReload"))]
    assert reloads == ["Reload pbx_config.so", "QueueReload"] * 2  # the deploy's, then the rollback's
    (version,) = list_versions(world.backups)
    assert version.manifest["result"] == "rolled_back"


async def test_refused_reload_rolls_back(world: World) -> None:
    edit(world.etc / "manager.conf", "write = config\n", "write = reporting\n")  # cannot Reload
    world.peer._load_users()
    world.original = snapshot(world.etc)
    edit(world.src / "asterisk-config" / "manager.conf", "write = config\n", "write = reporting\n")  # keep the source consistent
    edit(world.src / "dialplans" / "800-line.conf", "exten => _X.,1,NoOp(cti 800 line)", "exten => _X.,1,NoOp(cti 800 line v2)")
    out = await deploy(world.settings, by="admin")
    assert out.result == "rolled_back"
    assert "Permission denied (the deploy user needs write = config)" in out.message
    assert snapshot(world.etc) == world.original


async def test_a_manager_change_that_locks_the_deploy_user_out_is_rolled_back(world: World) -> None:
    edit(world.src / "asterisk-config" / "manager.conf", "secret = change-me-cti-deploy-secret", "secret = change-me-but-different")
    out = await deploy(world.settings, by="admin")
    assert out.reloads == ["manager"]
    assert out.result == "rolled_back" and "after the manager reload" in out.message
    assert snapshot(world.etc) == world.original
    assert world.peer.users["cti-deploy"][0] == DEPLOY_SECRET  # Asterisk runs the old users again
    assert [n for n in world.peer.names() if n.startswith("Reload")] == ["Reload manager", "Reload manager"]


async def test_a_manager_change_is_reloaded_and_verified_with_a_fresh_login(world: World) -> None:
    edit(world.src / "asterisk-config" / "manager.conf", "writetimeout = 1000\n\n", "writetimeout = 2000\n\n")
    logins = sum(1 for a, _ in world.peer.actions if a == "Login")
    out = await deploy(world.settings, by="admin")
    assert out.result == "deployed", out.message
    assert out.reloads == ["manager"]
    assert sum(1 for a, _ in world.peer.actions if a == "Login") == logins + 2  # the deploy's and the check's


# --------------------------------------------------------------------------- rollback


async def test_rollback_restores_the_previous_version(world: World) -> None:
    change_line_and_queue(world.src)
    (world.src / "dialplans" / "extra.conf").write_text("[cti-extra]\nexten => s,1,NoOp(extra)\n same => n,Hangup()\n")
    edit(world.src / "asterisk-config" / "extensions.conf", "#include dialplans/phones.conf", "#include dialplans/phones.conf\n#include dialplans/extra.conf")
    assert (await deploy(world.settings, by="admin")).result == "deployed"
    assert "cti-extra" in world.peer.contexts
    out = await rollback(world.settings, by="ops")
    assert out.result == "rolled_back", out.message
    assert snapshot(world.etc) == world.original  # extra.conf, new in the deploy, is gone again
    assert "cti-extra" not in world.peer.contexts and world.peer.queues["mobile"] == "rrmemory"
    nothing = await rollback(world.settings, by="ops")
    assert nothing.result == "refused" and "no deploy to roll back" in nothing.message


async def test_rollback_goes_back_one_deploy_at_a_time(world: World) -> None:
    edit(world.src / "dialplans" / "800-line.conf", "exten => _X.,1,NoOp(cti 800 line)", "exten => _X.,1,NoOp(cti 800 line v2)")
    assert (await deploy(world.settings, by="admin")).result == "deployed"
    v2 = snapshot(world.etc)
    edit(world.src / "dialplans" / "800-line.conf", "NoOp(cti 800 line v2)", "NoOp(cti 800 line v3)")
    assert (await deploy(world.settings, by="admin")).result == "deployed"
    assert (await rollback(world.settings, by="ops")).result == "rolled_back"
    assert snapshot(world.etc) == v2
    assert (await rollback(world.settings, by="ops")).result == "rolled_back"
    assert snapshot(world.etc) == world.original


async def test_rollback_refuses_files_edited_by_hand_unless_forced(world: World) -> None:
    change_line_and_queue(world.src)
    assert (await deploy(world.settings, by="admin")).result == "deployed"
    with open(world.etc / "queues.conf", "a") as f:
        f.write("; edited on the PBX\n")
    refused = await rollback(world.settings, by="ops")
    assert refused.result == "refused" and "queues.conf" in refused.message
    forced = await rollback(world.settings, by="ops", force=True)
    assert forced.result == "rolled_back"
    assert snapshot(world.etc) == world.original


async def test_one_deploy_at_a_time(world: World) -> None:
    change_line_and_queue(world.src)
    with deploy_lock(world.backups):
        with pytest.raises(DeployError, match="another deploy"):
            await deploy(world.settings, by="admin")
    assert snapshot(world.etc) == world.original


# --------------------------------------------------------------------------- diff


def test_diff_shows_what_a_deploy_would_change(tmp_path: Path) -> None:
    etc = _etc_copy(tmp_path / "etc")
    src = _checkout_copy(tmp_path / "src")
    assert plan_deploy(ConfigTree.at(src), etc).changes == []
    change_line_and_queue(src)
    (src / "dialplans" / "extra.conf").write_text("[cti-extra]\nexten => s,1,Hangup()\n")
    plan = plan_deploy(ConfigTree.at(src), etc)
    assert [c.name for c in plan.changes] == ["dialplans/800-line.conf", "dialplans/extra.conf", "queues.conf"]
    assert plan.reloads == ["dialplan", "queues"]
    text = plan.diff()
    assert "--- a/dialplans/800-line.conf\n+++ b/dialplans/800-line.conf\n" in text
    assert "\n-exten => _X.,1,NoOp(cti 800 line)\n+exten => _X.,1,NoOp(cti 800 line v2)\n" in text
    assert "--- /dev/null\n+++ b/dialplans/extra.conf\n" in text
    assert "\n-strategy = rrmemory\n+strategy = leastrecent\n" in text


# --------------------------------------------------------------------------- history


async def test_every_deploy_is_recorded(world: World, engine) -> None:
    change_line_and_queue(world.src)
    done = await deploy(world.settings, by="admin")
    await record(engine, done, host="pbx1")
    edit(world.src / "dialplans" / "800-line.conf", "${CTI_PORT}/ivr,", "${CTI_PORT}/ivrr,")
    refused = await deploy(world.settings, by="intern")
    await record(engine, refused, host="pbx1")
    undone = await rollback(world.settings, by="ops")
    await record(engine, undone, host="pbx1")
    await ensure_table(engine)  # harmless when present
    rows = await recent(engine)
    assert [(r["action"], r["result"], r["deployed_by"]) for r in rows] == [
        ("rollback", "rolled_back", "ops"), ("deploy", "refused", "intern"), ("deploy", "deployed", "admin")]
    deployed = rows[2]
    assert deployed["version"] == done.version and deployed["host"] == "pbx1"
    assert deployed["reloads"] == ["dialplan", "queues"]
    assert deployed["files"]["queues.conf"] == {
        "before": hashlib.sha256(world.original["queues.conf"]).hexdigest(),
        "after": hashlib.sha256((world.src / "asterisk-config" / "queues.conf").read_bytes()).hexdigest()}
    assert deployed["started_at"].tzinfo is not None and deployed["finished_at"] >= deployed["started_at"]
    assert "check found" in rows[1]["message"]
    assert set(rows[0]["files"]) == {"dialplans/800-line.conf", "queues.conf"}


async def test_history_table_is_added_to_an_older_database(db_url: str) -> None:
    from sqlalchemy import inspect

    from cti.db.engine import create_engine

    eng = create_engine(db_url)
    try:
        await ensure_table(eng)
        async with eng.connect() as conn:
            names = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert "dialplan_deploys" in names
    finally:
        await eng.dispose()


# --------------------------------------------------------------------------- the command line


async def _cti(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "from cti.cli import main; main()", *args, env={**os.environ, **env},
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_cli_diff_deploy_history_rollback(world: World, tmp_path: Path) -> None:
    change_line_and_queue(world.src)
    d = world.settings.deploy
    env = {"CTI_CONFIG": "", "CTI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}",
           "CTI_DEPLOY_SOURCE_DIR": d.source_dir, "CTI_DEPLOY_ASTERISK_CONFIG_DIR": d.asterisk_config_dir,
           "CTI_DEPLOY_BACKUP_DIR": d.backup_dir, "CTI_DEPLOY_AMI_HOST": "127.0.0.1",
           "CTI_DEPLOY_AMI_PORT": str(world.peer.port), "CTI_DEPLOY_AMI_SECRET": DEPLOY_SECRET, "CTI_LOG_LEVEL": "warning"}
    rc, out, err = await _cti("dialplan", "diff", env=env)
    assert rc == 0 and "+exten => _X.,1,NoOp(cti 800 line v2)" in out and "reload: dialplan, queues" in err
    rc, out, err = await _cti("dialplan", "deploy", "--by", "admin", env=env)
    assert rc == 0, out + err
    assert re.search(r"^deploy \S+: deployed: reloaded dialplan, queues; verified$", out, re.M), out
    rc, out, err = await _cti("dialplan", "diff", env=env)
    assert rc == 0 and out == "" and "no changes" in err
    rc, out, err = await _cti("dialplan", "rollback", "--by", "ops", env=env)
    assert rc == 0 and "rolled_back" in out, out + err
    rc, out, err = await _cti("dialplan", "history", env=env)
    assert rc == 0
    lines = out.splitlines()
    assert len(lines) == 2 and "rollback" in lines[0] and " ops " in lines[0] and "deployed" in lines[1] and " admin " in lines[1]
    assert snapshot(world.etc) == world.original


async def test_cli_deploy_refused_exits_non_zero(world: World, tmp_path: Path) -> None:
    edit(world.src / "dialplans" / "800-line.conf", "${CTI_PORT}/ivr,", "${CTI_PORT}/ivrr,")
    line = (world.src / "dialplans" / "800-line.conf").read_text().splitlines().index(
        " same => n,AGI(agi://${CTI_HOST}:${CTI_PORT}/ivrr,${CTI_DIGIT})") + 1
    env = {"CTI_CONFIG": "", "CTI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}",
           "CTI_DEPLOY_SOURCE_DIR": str(world.src), "CTI_DEPLOY_ASTERISK_CONFIG_DIR": str(world.etc),
           "CTI_DEPLOY_BACKUP_DIR": str(world.backups), "CTI_DEPLOY_AMI_PORT": str(world.peer.port)}
    rc, out, err = await _cti("dialplan", "deploy", env=env)
    assert rc == 1
    assert f"800-line.conf:{line}: error[agi-route]" in out and "refused" in out
    assert " -> " not in out  # no file was written, none is listed as changed
    assert snapshot(world.etc) == world.original


# --------------------------------------------------------------------------- replay of real bytes


def _captured(captures: Path, name: str) -> list[tuple[str, bytes]]:
    sys.path.insert(0, str(Path(__file__).parent))
    from captures_log import read_log

    return [(r.direction, r.data) for r in read_log(captures / f"{name}.log")]


async def test_ami_client_reads_the_captured_reload_dialogue(captures: Path) -> None:
    """AmiAsterisk against the exact bytes Asterisk 22 sent in ami-reload (ActionIDs rewritten)."""
    records = _captured(captures, "ami-reload")
    md5 = _captured(captures, "ami-login-md5")
    # answers keyed by the action that asked for them, as captured
    answers: dict[str, bytes] = {}
    asked = None
    for direction, data in md5 + records:
        if direction == "cti>asterisk":
            asked = data
            continue
        if asked is None:
            continue
        key = (re.search(rb"Action: (\S+)", asked).group(1) + b" " +
               (re.search(rb"(?:Module|Context): (\S+)", asked) or re.search(rb"()", asked)).group(1)).decode()
        answers[key] = answers.get(key, b"") + data
    script = {"Challenge": answers["Challenge "], "Login": answers["Login "],
              "Reload pbx_config.so": answers["Reload pbx_config.so"],
              "Reload manager": answers["Reload no_such_module.so"],
              "ShowDialPlan from-pstn": answers["ShowDialPlan from-pstn"],
              "ShowDialPlan nope": answers["ShowDialPlan no-such-context"]}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(records[0][1])  # the banner
        while True:
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            aid = re.search(rb"ActionID: (\S+)", raw).group(1)
            action = re.search(rb"Action: (\S+)", raw).group(1).decode()
            arg = re.search(rb"(?:Module|Context): (\S+)", raw)
            reply = script.get(f"{action} {arg.group(1).decode()}" if arg else action, b"")
            if action == "Login":  # the captured Login answers the md5 key of the captured challenge
                reply = answers["Login "]
            writer.write(re.sub(rb"ActionID: cti-\d+", b"ActionID: " + aid, reply))
            await writer.drain()
            if action == "Logoff":
                writer.close()
                return

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        ami = await AmiAsterisk("127.0.0.1", port, "cti", "secret", timeout=5).connect()
        assert await ami.reload("dialplan") == "Module Reloaded"
        with pytest.raises(ReloadError, match="No such module"):
            await ami.reload("manager")
        view = await ami.context("from-pstn")
        assert view is not None and len(view.entries) == 9
        assert view.extensions() == {"8005551234": ["NoOp", "Answer", "AGI", "NoOp", "ExecIf", "ExecIf", "Queue", "NoOp", "Hangup"]}
        assert view.entries[2].data == "agi://127.0.0.1:4573/incoming"
        assert await ami.context("nope") is None
        await ami.close()
    finally:
        server.close()
        await server.wait_closed()
