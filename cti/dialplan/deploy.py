"""``cti dialplan deploy | rollback | diff``: files into Asterisk's configuration directory, safely.

A deploy:

1. checks the source (:func:`cti.dialplan.checks.check_tree`) and refuses on any error;
2. compares each managed file with the target (``deploy.asterisk_config_dir``): only changed
   files are written, and only what they affect is reloaded (``extensions.conf`` and
   ``dialplans/*`` -> dialplan, ``queues.conf`` -> queues, ``manager.conf`` -> manager);
3. reaches Asterisk first (AMI deploy user or ``asterisk -rx``): if it cannot, nothing is written;
4. saves the version it replaces under ``<backup_dir>/<version>/before/`` (and what it installs
   under ``after/``, with a ``manifest.json`` of names and SHA-256), then writes each file
   atomically (temporary file in the same directory, fsync, rename; mode and owner kept);
5. reloads, then verifies what Asterisk now runs: every context of the deployed dialplan with
   exactly the deployed steps (``ShowDialPlan``), every queue of queues.conf with its strategy
   (``QueueStatus``), and a fresh AMI login of the deploy user after a manager reload;
6. on a failed reload or verification, restores the previous files, reloads them and reports
   ``rolled_back``.

``rollback`` restores the ``before/`` files of the newest deploy still in effect (refusing if a
file was changed by hand since, unless forced), reloads and verifies. Deploys never delete a
file that is not in the source. One deploy at a time (a lock file in the backup directory).
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import hashlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, Mapping

import structlog

from cti.config import Settings
from cti.dialplan.checks import Report, check_tree
from cti.dialplan.conf import read_conf
from cti.dialplan.model import Dialplan, build_dialplan
from cti.dialplan.reload import RELOAD_ORDER, Asterisk, ReloadError, connect_asterisk
from cti.dialplan.tree import ConfigTree

log = structlog.get_logger(__name__)

AsteriskFactory = Callable[[], Awaitable[Asterisk]]


class DeployError(RuntimeError):
    """A deploy or rollback that cannot even start (lock held, nothing to roll back, ...)."""


# --------------------------------------------------------------------------- files and plans


def sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class FileChange:
    name: str  # relative to the Asterisk configuration directory
    before: bytes | None  # None: not in the target yet
    after: bytes | None  # None: to be removed (rollback of a file a deploy created)

    @property
    def reload(self) -> str:
        return reload_kind(self.name)


def reload_kind(name: str) -> str:
    if name == "queues.conf":
        return "queues"
    if name == "manager.conf":
        return "manager"
    return "dialplan"


@dataclass
class Plan:
    source: ConfigTree
    target_dir: Path
    changes: list[FileChange]

    @property
    def reloads(self) -> list[str]:
        kinds = {c.reload for c in self.changes}
        return [k for k in RELOAD_ORDER if k in kinds]

    def diff(self) -> str:
        return unified_diff(self.changes)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def plan_deploy(source: ConfigTree, target_dir: Path) -> Plan:
    """What deploying ``source`` into ``target_dir`` would write."""
    changes = []
    for name, path in sorted(source.files.items()):
        after = path.read_bytes()
        before = _read(target_dir / name)
        if before != after:
            changes.append(FileChange(name, before, after))
    return Plan(source, target_dir, changes)


def unified_diff(changes: list[FileChange]) -> str:
    out: list[str] = []
    for c in changes:
        a = (c.before or b"").decode("utf-8", "replace").splitlines(keepends=True)
        b = (c.after or b"").decode("utf-8", "replace").splitlines(keepends=True)
        old = f"a/{c.name}" if c.before is not None else "/dev/null"
        new = f"b/{c.name}" if c.after is not None else "/dev/null"
        for line in difflib.unified_diff(a, b, old, new):
            out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def write_atomic(path: Path, data: bytes, like: Path | None = None) -> None:
    """Replace ``path`` with ``data`` in one rename; keep its mode/owner (or ``like``'s, or 0640)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ref = path if path.exists() else like if like is not None and like.exists() else None
    st = ref.stat() if ref is not None else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".cti-tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, (st.st_mode & 0o7777) if st is not None else 0o640)
        if st is not None and os.geteuid() == 0:
            os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def apply_changes(target_dir: Path, changes: list[FileChange], use: str = "after") -> None:
    like = target_dir / "extensions.conf"
    for c in changes:
        data = c.after if use == "after" else c.before
        path = target_dir / c.name
        if data is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        else:
            write_atomic(path, data, like)


# --------------------------------------------------------------------------- versions


def backup_root(settings: Settings) -> Path:
    d = settings.deploy
    return Path(d.backup_dir) if d.backup_dir else Path(d.asterisk_config_dir) / ".cti-deploy"


def new_version(now: datetime) -> str:
    return now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


@dataclass
class Version:
    dir: Path
    manifest: dict

    @property
    def id(self) -> str:
        return self.manifest["version"]

    def changes(self) -> list[FileChange]:
        out = []
        for name, info in sorted(self.manifest["files"].items()):
            before = (self.dir / "before" / name).read_bytes() if info["before"] is not None else None
            after = (self.dir / "after" / name).read_bytes() if info["after"] is not None else None
            out.append(FileChange(name, before, after))
        return out

    def save(self) -> None:
        write_atomic(self.dir / "manifest.json", json.dumps(self.manifest, indent=2, sort_keys=True).encode(), None)


def save_version(root: Path, version: str, changes: list[FileChange], meta: dict) -> Version:
    vdir = root / version
    for c in changes:
        for kind, data in (("before", c.before), ("after", c.after)):
            if data is not None:
                write_atomic(vdir / kind / c.name, data, None)
    manifest = {"version": version, **meta,
                "files": {c.name: {"before": sha256(c.before), "after": sha256(c.after)} for c in changes}}
    v = Version(vdir, manifest)
    v.save()
    return v


def list_versions(root: Path) -> list[Version]:
    """Saved versions, oldest first."""
    out = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        m = d / "manifest.json"
        if d.is_dir() and m.is_file():
            try:
                out.append(Version(d, json.loads(m.read_text())))
            except (ValueError, OSError):
                continue
    return out


def prune_versions(root: Path, keep: int) -> None:
    import shutil

    versions = list_versions(root)
    for v in versions[:-keep] if len(versions) > keep else []:
        shutil.rmtree(v.dir, ignore_errors=True)


@contextlib.contextmanager
def deploy_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DeployError(f"another deploy or rollback is running (lock {root / '.lock'})") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------- verification


def expected_dialplan(target_dir: Path) -> Dialplan:
    return build_dialplan(read_conf(target_dir / "extensions.conf", (target_dir,)))


def expected_queues(target_dir: Path) -> dict[str, str]:
    sections = read_conf(target_dir / "queues.conf", (target_dir,))
    return {s.name: (s.first("strategy") or "ringall") for s in sections if not s.is_template and s.name != "general"}


async def verify(asterisk: Asterisk, target_dir: Path, reconnect: AsteriskFactory | None = None) -> list[str]:
    """What Asterisk runs differs from the files in ``target_dir``: one line per problem (empty: all good)."""
    problems: list[str] = []
    if reconnect is not None:  # manager.conf changed: the deploy user must still get in
        try:
            fresh = await reconnect()
            await fresh.close()
        except ReloadError as exc:
            problems.append(f"after the manager reload: {exc}")
    try:
        plan = expected_dialplan(target_dir)
        wanted_q = expected_queues(target_dir)
    except (ValueError, OSError) as exc:
        return [f"cannot read the files in {target_dir}: {exc}"]
    for name, extens in plan.contexts.items():
        view = await asterisk.context(name)
        if view is None:
            problems.append(f"context [{name}] is not in Asterisk's dialplan")
            continue
        running = {(e.exten, e.priority, e.app, e.data) for e in view.entries}
        wanted = {(ext.name, i, s.app, s.data) for ext in extens.values() for i, s in enumerate(ext.steps, 1)}
        if running != wanted:
            missing = sorted(wanted - running)[:3]
            extra = sorted(running - wanted)[:3]
            problems.append(f"context [{name}] differs from the deployed files: missing {missing}, unexpected {extra}")
        if set(view.includes) != set(plan.includes.get(name, [])):
            problems.append(f"context [{name}] includes {sorted(view.includes)}, the files say "
                            f"{sorted(plan.includes.get(name, []))}")
    running_q = await asterisk.queues()
    for name, strategy in sorted(wanted_q.items()):
        if name not in running_q:
            problems.append(f"queue {name!r} is not loaded in Asterisk")
        elif running_q[name] != strategy:
            problems.append(f"queue {name!r} runs with strategy {running_q[name]!r}, queues.conf says {strategy!r}")
    return problems


# --------------------------------------------------------------------------- deploy / rollback


@dataclass
class Outcome:
    action: str  # deploy | rollback
    result: str  # deployed | unchanged | refused | failed | rolled_back
    version: str
    by: str
    started_at: datetime
    finished_at: datetime | None = None
    files: dict[str, dict[str, str | None]] = field(default_factory=dict)
    reloads: list[str] = field(default_factory=list)
    message: str = ""
    report: Report | None = None
    diff: str = ""

    @property
    def ok(self) -> bool:
        return self.result in ("deployed", "unchanged")


async def _reload_all(asterisk: Asterisk, kinds: list[str]) -> None:
    for kind in kinds:
        answer = await asterisk.reload(kind)
        log.info("dialplan.reloaded", what=kind, answer=answer)


async def deploy(settings: Settings, *, by: str, source: ConfigTree | None = None,
                 asterisk_factory: AsteriskFactory | None = None, config_file: Path | None = None,
                 saved_rules: tuple[int, Mapping[str, Any]] | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> Outcome:
    """Check, write, reload, verify; roll back on failure. Never raises for an expected failure.

    ``saved_rules``: the routing rules saved from the web (see :func:`check_tree`), checked too."""
    started = now()
    version = new_version(started)
    out = Outcome("deploy", "failed", version, by, started)
    factory = asterisk_factory or (lambda: connect_asterisk(settings))
    source = source or ConfigTree.at(settings.deploy.source_dir)
    target = Path(settings.deploy.asterisk_config_dir)

    def finish(result: str, message: str) -> Outcome:
        out.result, out.message, out.finished_at = result, message, now()
        return out

    def describe(plan: Plan) -> None:
        out.files = {c.name: {"before": sha256(c.before), "after": sha256(c.after)} for c in plan.changes}
        out.reloads = plan.reloads
        out.diff = plan.diff()

    out.report = report = check_tree(source, settings, config_file=config_file, saved_rules=saved_rules)
    if not report.ok:
        describe(plan_deploy(source, target))
        return finish("refused", f"check found {len(report.errors)} error(s); nothing written")
    if not target.is_dir():
        return finish("failed", f"deploy.asterisk_config_dir {target} is not a directory; nothing written")
    root = backup_root(settings)
    with deploy_lock(root):
        plan = plan_deploy(source, target)  # under the lock: "before" is what is really replaced
        describe(plan)
        if not plan.changes:
            return finish("unchanged", "the target already holds these files")
        try:
            asterisk = await factory()
        except ReloadError as exc:
            return finish("failed", f"{exc}; nothing written")
        try:
            v = save_version(root, version, plan.changes,
                             {"action": "deploy", "by": by, "created_at": started.isoformat(), "result": "started",
                              "target": str(target), "reloads": plan.reloads})
            problems: list[str] = []
            try:
                apply_changes(target, plan.changes, "after")
                log.info("dialplan.written", version=version, files=sorted(out.files))
                await _reload_all(asterisk, plan.reloads)
                problems = await verify(asterisk, target, factory if "manager" in plan.reloads else None)
            except ReloadError as exc:
                problems = [str(exc)]
            except Exception as exc:  # a write that failed half-way, a bug: never leave it half-deployed
                log.exception("dialplan.deploy_error", version=version)
                problems = [f"{type(exc).__name__}: {exc}"]
            if not problems:
                result, message = "deployed", f"reloaded {', '.join(plan.reloads)}; verified"
            else:
                log.error("dialplan.verify_failed", version=version, problems=problems)
                result, message = "rolled_back", "; ".join(problems)
                again = await _restore(asterisk, target, plan.changes, plan.reloads, version)
                if again:
                    result = "failed"
                    message += "; restoring the previous version failed too: " + "; ".join(again)
                else:
                    message += "; previous version restored and reloaded"
            v.manifest["result"] = result
            v.manifest["message"] = message
            v.save()
            prune_versions(root, settings.deploy.keep_versions)
        finally:
            await asterisk.close()
    return finish(result, message)


async def _restore(asterisk: Asterisk, target: Path, changes: list[FileChange], reloads: list[str],
                   version: str) -> list[str]:
    """Put the ``before`` files back, reload, and verify Asterisk runs them; the problems left."""
    try:
        apply_changes(target, changes, "before")
    except OSError as exc:
        log.error("dialplan.restore_failed", version=version, error=str(exc))
        return [f"cannot write the previous files: {exc}"]
    for kind in reloads:  # a refused reload may be harmless: Asterisk may still run the old files
        try:
            await asterisk.reload(kind)
        except ReloadError as exc:
            log.warning("dialplan.restore_reload_failed", version=version, what=kind, error=str(exc))
    try:
        return await verify(asterisk, target)
    except ReloadError as exc:
        return [str(exc)]


def current_version(root: Path, target: Path) -> Version | None:
    """The newest deploy still in effect (not rolled back, not failed)."""
    for v in reversed(list_versions(root)):
        if v.manifest.get("action") == "deploy" and v.manifest.get("result") == "deployed":
            return v
    return None


async def rollback(settings: Settings, *, by: str, asterisk_factory: AsteriskFactory | None = None,
                   force: bool = False,
                   now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> Outcome:
    """Restore the files the newest deploy replaced, reload them and verify."""
    started = now()
    out = Outcome("rollback", "failed", new_version(started), by, started)
    factory = asterisk_factory or (lambda: connect_asterisk(settings))
    target = Path(settings.deploy.asterisk_config_dir)
    root = backup_root(settings)
    with deploy_lock(root):
        v = current_version(root, target)
        if v is None:
            out.result, out.message = "refused", f"no deploy to roll back in {root}"
            out.finished_at = now()
            return out
        changes = v.changes()
        out.files = {c.name: {"before": sha256(c.after), "after": sha256(c.before)} for c in changes}
        out.reloads = [k for k in RELOAD_ORDER if k in {c.reload for c in changes}]
        edited = [c.name for c in changes if sha256(_read(target / c.name)) != sha256(c.after)]
        if edited and not force:
            out.result = "refused"
            out.message = (f"changed since deploy {v.id}: {', '.join(edited)} (someone edited them); "
                           "rollback --force overwrites them")
            out.finished_at = now()
            return out
        out.diff = unified_diff([FileChange(c.name, _read(target / c.name), c.before) for c in changes])
        try:
            asterisk = await factory()
        except ReloadError as exc:
            out.message = f"{exc}; nothing restored"
            out.finished_at = now()
            return out
        try:
            apply_changes(target, changes, "before")
            try:
                await _reload_all(asterisk, out.reloads)
                problems = await verify(asterisk, target, factory if "manager" in out.reloads else None)
            except ReloadError as exc:
                problems = [str(exc)]
            v.manifest["result"] = "rolled_back"
            v.manifest["rolled_back_by"] = out.version
            v.save()
            if problems:
                out.message = f"restored the files of before {v.id}, but: " + "; ".join(problems)
            else:
                out.result = "rolled_back"
                out.message = f"restored the version before deploy {v.id}; reloaded {', '.join(out.reloads)}; verified"
        finally:
            await asterisk.close()
    out.finished_at = now()
    return out
