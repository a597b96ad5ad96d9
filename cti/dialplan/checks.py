"""``cti dialplan check``: asterisklint plus cti's own cross-checks, as file:line findings.

cti's checks (each finding's ``code``):

* ``parse``: a line Asterisk would not read, a missing ``#include``.
* ``queue-unknown``: a queue named in a dialplan (``Queue()``, ``Set(CTI_QUEUE=...)``,
  ``DEFAULT_QUEUE``) or in cti's routing settings that ``queues.conf`` does not define.
* ``agi-route``: ``AGI(agi://HOST:PORT/ROUTE)`` with a ROUTE cti does not serve
  (:data:`SERVED_ROUTES`); ``agi-target`` (warning): host/port differ from cti's ``[agi]``.
* ``goto-target``: a ``Goto``/``GotoIf``/``Gosub`` (also inside ``ExecIf``) or ``include``
  whose context, extension or label does not exist. Targets built from channel variables
  cannot be checked statically and are skipped; ``${EXTEN}`` and globals are substituted.
* ``fallback``: the 800 line (``[cti-inbound]``) must branch on an empty ``CTI_QUEUE`` right
  after asking cti, before any cti sound or queue; then the walk of a call with cti down
  must reach ``Queue(DEFAULT_QUEUE)`` without playing anything.
* ``ami-privilege``: the daemon's AMI user (``ami.username``) has the classes cti needs and
  no more: no ``dialplan``/``all`` read class (raw caller data forges AMI frames), no
  ``system``/``command``/``config``/``all`` write class. The deploy user (``deploy.ami_username``)
  needs ``write = config`` and nothing broader.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Mapping
from pathlib import Path

from cti.config import Settings
from cti.dialplan.conf import ConfSyntaxError, IncludeNotFound, Section, read_conf, sections_named
from cti.dialplan.findings import Finding
from cti.dialplan.model import Dialplan, Extension, Step, app_call, build_dialplan, jump_targets, sample_for, split_top
from cti.dialplan.tree import ConfigTree, TreeError
from cti.dialplan.walker import Channel, WalkError

#: FastAGI routes cti serves (cti.routing.inbound.InboundRoutes.routes).
SERVED_ROUTES = frozenset({"incoming", "ivr"})
#: The 800 line's entry context (DESIGN.md contract) and cti's transfer target (AMI BlindTransfer).
ENTRY_CONTEXT = "cti-inbound"
TRANSFER_CONTEXT = "cti-transfer"

#: AMI classes: what cti's daemon needs, what it may have, what it must not have.
DAEMON_READ_NEEDED = frozenset({"system", "call", "agent"})
DAEMON_READ_ALLOWED = DAEMON_READ_NEEDED | {"user", "reporting"}
DAEMON_READ_FORBIDDEN = {
    "dialplan": "Newexten/VarSet carry raw caller data (CR/LF) that forges AMI frames",
    "all": "includes 'dialplan' (raw caller data forges AMI frames)",
}
DAEMON_WRITE_NEEDED = frozenset({"call", "agent", "originate", "reporting"})
DAEMON_WRITE_FORBIDDEN = {
    "system": "grants GetConfig (every config file, SIP and AMI secrets), ModuleLoad, DBPut, Reload",
    "command": "runs any CLI command (core restart now, module unload ...)",
    "config": "grants GetConfig/UpdateConfig: read and rewrite any config file",
    "all": "every action, Command included",
}
DEPLOY_WRITE_FORBIDDEN = {
    "command": "runs any CLI command; 'config' is enough to reload",
    "all": "every action, Command included; 'config' is enough to reload",
}
PLACEHOLDER_SECRET = re.compile(r"change-?me", re.I)

_FALLBACK_TEST = re.compile(r'"?\$\{CTI_QUEUE\}"?\s*=\s*""|ISNULL\(\$\{CTI_QUEUE\}\)|\$\{LEN\(\$\{CTI_QUEUE\}\)\}\s*=\s*0')
_AGI_URL = re.compile(r"^agi://(?P<host>[^/:]+|\[[^\]]+\])(?::(?P<port>[^/]+))?/(?P<route>[^?,]*)")


@dataclass
class Report:
    tree: ConfigTree
    findings: list[Finding] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


class _Collector:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def error(self, file: Path | None, line: int | None, code: str, message: str) -> None:
        self.findings.append(Finding("error", file, line, code, message))

    def warning(self, file: Path | None, line: int | None, code: str, message: str) -> None:
        self.findings.append(Finding("warning", file, line, code, message))


def check_tree(tree: ConfigTree | str | Path, settings: Settings, *, config_file: Path | None = None,
               lint: bool = True, saved_rules: tuple[int, Mapping[str, Any]] | None = None) -> Report:
    """Every check over ``tree``; ``config_file`` is named in findings about cti's own settings.

    ``saved_rules`` is ``(version, document)`` of the routing rules saved from the web
    (``routing_rule_versions``), which the daemon uses instead of the file's ``routing.*``:
    every queue they name must exist too."""
    started = time.perf_counter()
    if not isinstance(tree, ConfigTree):
        tree = ConfigTree.at(tree)
    out = _Collector()
    cti_conf = config_file or Path("cti.toml")

    queues = _read_queues(tree, out)
    plan = _read_dialplan(tree, out)
    if lint and "extensions.conf" in tree.files:
        from cti.dialplan.lint import lint_dialplan

        try:
            out.findings.extend(lint_dialplan(tree))
        except Exception as exc:  # asterisklint itself failed: say so, do not hide the rest
            out.warning(tree.files["extensions.conf"], None, "asterisklint", f"asterisklint could not run: {exc!r}")
    _check_routing_queues(settings, queues, plan, cti_conf, tree, out)
    if saved_rules is not None:
        _check_saved_rules(*saved_rules, queues, out)
    if plan is not None:
        if queues is not None:
            _check_dialplan_queues(plan, queues, out)
        _check_agi(plan, settings, out)
        _check_jumps(plan, out)
        _check_fallback(plan, tree, queues, out)
    _check_manager(tree, settings, out)
    findings = sorted(set(out.findings), key=lambda f: (str(f.file), f.line or 0, f.severity, f.code, f.message))
    return Report(tree, findings, time.perf_counter() - started)


# --------------------------------------------------------------------------- reading


def _parse_error(out: _Collector, exc: Exception) -> None:
    if isinstance(exc, (ConfSyntaxError, IncludeNotFound)):
        out.error(exc.file, exc.line, "parse", str(exc).split(": ", 1)[1] if ": " in str(exc) else str(exc))
    else:
        out.error(None, None, "parse", str(exc))


def _read_queues(tree: ConfigTree, out: _Collector) -> dict[str, Section] | None:
    path = tree.files.get("queues.conf")
    if path is None:
        out.error(tree.root / "queues.conf", None, "parse", "queues.conf is missing")
        return None
    try:
        sections = read_conf(path, tree.include_roots)
    except (ValueError, OSError) as exc:
        _parse_error(out, exc)
        return None
    return {s.name: s for s in sections if not s.is_template and s.name != "general"}


def _read_dialplan(tree: ConfigTree, out: _Collector) -> Dialplan | None:
    try:
        return build_dialplan(read_conf(tree.require("extensions.conf"), tree.include_roots))
    except (ValueError, OSError) as exc:
        if isinstance(exc, TreeError):
            out.error(tree.root / "extensions.conf", None, "parse", str(exc))
        else:
            _parse_error(out, exc)
        return None


# --------------------------------------------------------------------------- queues


def _subst_static(text: str, plan: Dialplan, exten: str | None = None) -> str | None:
    """``text`` with globals (and ``${EXTEN}``) substituted; None if a channel variable remains."""
    def var(m: re.Match[str]) -> str:
        name = m.group(1)
        sub = re.fullmatch(r"EXTEN(?::(-?\d+)(?::(\d+))?)?", name)
        if sub and exten is not None:
            value = exten
            if sub.group(1):
                value = value[int(sub.group(1)):]
            if sub.group(2):
                value = value[: int(sub.group(2))]
            return value
        if name in plan.globals:
            return plan.globals[name]
        return "\x00"

    for _ in range(10):
        new = re.sub(r"\$\{([^{}]*)\}", var, text)
        if new == text:
            break
        text = new
    if "\x00" in text or "${" in text or "$[" in text:
        return None
    return text


def _queue_steps(plan: Dialplan):
    """(step, queue expression) for every Queue() and Set(CTI_QUEUE=...) step, ExecIf included."""
    for _, _, step in plan.steps():
        app, data = step.app, step.data
        if app == "ExecIf":
            try:
                app, data = app_call(data.partition("?")[2])
            except ValueError:
                continue
        if app == "Queue":
            yield step, split_top(data, ",")[0].strip()
        elif app == "Set" and data.startswith("CTI_QUEUE="):
            value = data.partition("=")[2].strip()
            if value:
                yield step, value


def _check_dialplan_queues(plan: Dialplan, queues: dict[str, Section], out: _Collector) -> None:
    for step, expr in _queue_steps(plan):
        name = _subst_static(expr, plan)
        if name is None or not name:
            continue
        if name not in queues:
            out.error(step.file, step.line, "queue-unknown",
                      f"queue {name!r} ({expr}) is not defined in queues.conf (queues: {', '.join(sorted(queues))})")
    default = plan.globals.get("DEFAULT_QUEUE")
    where = plan.globals_where.get("DEFAULT_QUEUE")
    if default is not None and default not in queues:
        out.error(where[0] if where else None, where[1] if where else None, "queue-unknown",
                  f"DEFAULT_QUEUE={default!r} is not defined in queues.conf: callers would reach no one when cti is down")


def _check_routing_queues(settings: Settings, queues: dict[str, Section] | None, plan: Dialplan | None,
                          cti_conf: Path, tree: ConfigTree, out: _Collector) -> None:
    if queues is None:
        return
    r = settings.routing
    named = [("routing.queues", q) for q in r.queues] + [("routing.default_queue", r.default_queue)]
    named += [(f"routing.dids.{k}", v) for k, v in r.dids.items()]
    named += [(f"routing.ivr.{k}", v) for k, v in r.ivr.items()]
    if r.afterhours_queue:
        named.append(("routing.afterhours_queue", r.afterhours_queue))
    for key, queue in named:
        if queue not in queues:
            out.error(cti_conf, None, "queue-unknown",
                      f"{key} = {queue!r}: no such queue in queues.conf ({', '.join(sorted(queues))})")
    qfile = tree.files.get("queues.conf")
    for name, section in queues.items():
        if name not in r.queues:
            out.warning(section.file or qfile, section.line or None, "queue-unused",
                        f"queue [{name}] is not in cti's routing.queues: cti never routes a caller there")
    if plan is not None:
        default = plan.globals.get("DEFAULT_QUEUE")
        where = plan.globals_where.get("DEFAULT_QUEUE")
        if default is not None and default != r.default_queue:
            out.warning(where[0] if where else None, where[1] if where else None, "queue-default",
                        f"DEFAULT_QUEUE={default!r} but cti's routing.default_queue is {r.default_queue!r}")


def _check_saved_rules(version: int, doc: Mapping[str, Any], queues: dict[str, Section] | None,
                       out: _Collector) -> None:
    """The active web-saved rules name only queues that queues.conf defines."""
    if queues is None:
        return
    where = Path(f"<database: routing rules v{version}, saved from the web>")
    named: list[tuple[str, Any]] = [("queues", q) for q in doc.get("queues") or ()]
    named += [(k, doc.get(k)) for k in ("default_queue", "afterhours_queue") if doc.get(k)]
    for group in ("dids", "ivr", "product_queues"):
        named += [(f"{group}.{k}", v) for k, v in (doc.get(group) or {}).items()]
    for key, queue in named:
        if isinstance(queue, str) and queue not in queues:
            out.error(where, None, "queue-unknown",
                      f"{key} = {queue!r}: no such queue in queues.conf ({', '.join(sorted(queues))}); "
                      "fix it at /routing or add the queue")


# --------------------------------------------------------------------------- AGI


def _agi_steps(plan: Dialplan):
    for ctx, ext, step in plan.steps():
        app, data = step.app, step.data
        if app == "ExecIf":
            try:
                app, data = app_call(data.partition("?")[2])
            except ValueError:
                continue
        if app in ("AGI", "EAGI"):
            yield ctx, ext, step, split_top(data, ",")[0].strip()


def _check_agi(plan: Dialplan, settings: Settings, out: _Collector) -> None:
    for _, _, step, url in _agi_steps(plan):
        m = _AGI_URL.match(url)
        if not m:
            continue  # a local AGI script, hagi://: not cti
        route = m.group("route")
        if route not in SERVED_ROUTES:
            out.error(step.file, step.line, "agi-route",
                      f"AGI route {route!r} ({url}): cti serves only {', '.join(sorted(SERVED_ROUTES))}")
        host = _subst_static(m.group("host"), plan)
        port = _subst_static(m.group("port") or "4573", plan)
        if port is not None and port != str(settings.agi.port):
            out.warning(step.file, step.line, "agi-target",
                        f"AGI to port {port} but cti's agi.port is {settings.agi.port}")
        if host is not None and settings.agi.host not in ("0.0.0.0", "::", "", host):
            out.warning(step.file, step.line, "agi-target",
                        f"AGI to host {host} but cti's FastAGI server listens on {settings.agi.host}")


# --------------------------------------------------------------------------- jumps


def _split_goto(target: str, context: str, exten: str) -> tuple[str, str, str]:
    parts = [p.strip() for p in target.split(",")]
    if len(parts) == 1:
        return context, exten, parts[0]
    if len(parts) == 2:
        return context, parts[0], parts[1]
    return parts[0], parts[1], parts[2]


def _check_jumps(plan: Dialplan, out: _Collector) -> None:
    for ctx, name, file, line in plan.include_lines:
        if name not in plan.contexts:
            out.error(file, line, "goto-target", f"[{ctx}] includes context {name!r}, which does not exist")
    for ctx, ext, step in plan.steps():
        dialed = sample_for(ext.name)
        for raw in jump_targets(step):
            target = _subst_static(raw, plan, dialed)
            if target is None:
                continue  # built from channel variables: only known at run time
            to_ctx, to_ext, label = _split_goto(target, ctx, dialed)
            if to_ctx not in plan.contexts:
                out.error(step.file, step.line, "goto-target",
                          f"{step.app}({raw}): context {to_ctx!r} does not exist")
                continue
            found = plan.find(to_ctx, to_ext)
            if found is None:
                out.error(step.file, step.line, "goto-target",
                          f"{step.app}({raw}): no extension {to_ext!r} in [{to_ctx}]")
                continue
            if found.label_index(label) is None:
                out.error(step.file, step.line, "goto-target",
                          f"{step.app}({raw}): no priority or label {label!r} in {found.name}@{to_ctx}")


# --------------------------------------------------------------------------- the 800 line's fallback


def _check_fallback(plan: Dialplan, tree: ConfigTree, queues: dict[str, Section] | None, out: _Collector) -> None:
    ext_file = tree.files.get("extensions.conf")
    if ENTRY_CONTEXT not in plan.contexts:
        out.error(ext_file, None, "fallback", f"the 800 line's context [{ENTRY_CONTEXT}] does not exist")
        return
    ctx_file, ctx_line = plan.context_where.get(ENTRY_CONTEXT, (ext_file, None))
    if TRANSFER_CONTEXT not in plan.contexts:
        out.error(ext_file, None, "goto-target",
                  f"context [{TRANSFER_CONTEXT}] does not exist: cti's transfers to a queue (AMI BlindTransfer) target it")
    extens = plan.contexts[ENTRY_CONTEXT]
    if "s" not in extens:
        out.warning(ctx_file, ctx_line, "fallback", f"[{ENTRY_CONTEXT}] has no 's' extension for trunks that send no number")
    asking = [(ext, i, step) for ext in extens.values() for i, step in enumerate(ext.steps)
              if step.app == "AGI" and re.search(r"/incoming\b", step.data)]
    if not asking:
        out.error(ctx_file, ctx_line, "fallback", f"[{ENTRY_CONTEXT}] never asks cti (no AGI(agi://.../incoming))")
        return
    for ext, index, agi in asking:
        _static_fallback(ext, index, agi, out)
    # As behaviour: a call with cti down must reach DEFAULT_QUEUE and hear no cti sound.
    line_number = plan.globals.get("CTI_LINE_NUMBER") or sample_for(asking[0][0].name)
    default = plan.globals.get("DEFAULT_QUEUE", "")
    chan = Channel(plan, _cti_down, _connected, set(queues or ()))
    agi = asking[0][2]
    try:
        chan.run(ENTRY_CONTEXT, line_number if plan.find(ENTRY_CONTEXT, line_number) else sample_for(asking[0][0].name))
    except WalkError as exc:
        out.warning(agi.file, agi.line, "fallback", f"the call with cti down could not be followed: {exc}")
        return
    queued = [(i, d) for i, (a, d) in enumerate(chan.trace) if a == "Queue"]
    played = [i for i, (a, d) in enumerate(chan.trace) if a in ("Playback", "Background", "Read")]
    if not queued:
        out.error(agi.file, agi.line, "fallback",
                  "with cti down (AGI fails, CTI_QUEUE empty) the call never reaches Queue(): "
                  f"it ends after {chan.trace[-1][0] if chan.trace else 'nothing'}")
        return
    first, data = queued[0]
    name = data.split(",")[0]
    if name != default:
        out.error(agi.file, agi.line, "fallback",
                  f"with cti down the call joins {name!r}, not DEFAULT_QUEUE ({default!r})")
    if any(i < first for i in played):
        out.error(agi.file, agi.line, "fallback",
                  "with cti down the caller hears a cti sound before the queue (Playback of an empty/unknown sound)")


def _static_fallback(ext: Extension, index: int, agi: Step, out: _Collector) -> None:
    before = ext.steps[:index]
    if not any(s.app == "Set" and s.data.replace(" ", "") == "CTI_QUEUE=" for s in before):
        out.warning(agi.file, agi.line, "fallback",
                    "CTI_QUEUE is not cleared (Set(CTI_QUEUE=)) before the AGI: a value inherited from "
                    "another leg would pass for cti's answer")
    for step in ext.steps[index + 1:]:
        if step.app == "GotoIf" and _FALLBACK_TEST.search(step.data.partition("?")[0]):
            return
        app = step.app
        if app == "ExecIf":
            try:
                app = app_call(step.data.partition("?")[2])[0]
            except ValueError:
                pass
        if app in ("Playback", "Background", "Read", "Queue", "Dial", "Hangup", "Goto") or (
                step.app == "GotoIf" and "AGISTATUS" in step.data):
            break
    out.error(agi.file, agi.line, "fallback",
              "no fallback after this AGI: the next steps must branch on an empty CTI_QUEUE "
              '(GotoIf($["${CTI_QUEUE}" = ""]?...)) before any sound or queue, so a caller reaches '
              "DEFAULT_QUEUE when cti is down (AGISTATUS is no reliable signal)")


def _cti_down(chan: Channel, url: str, args: list[str]) -> None:
    chan.vars["AGISTATUS"] = "FAILURE"


def _connected(chan: Channel, name: str, args: list[str]) -> str | None:
    return None


# --------------------------------------------------------------------------- manager.conf


def _classes(section: Section, key: str) -> tuple[set[str], int | None]:
    item = section.item(key)
    if item is None:
        return set(), section.line
    return {c.strip().lower() for c in item.value.split(",") if c.strip()}, item.line


def _check_manager(tree: ConfigTree, settings: Settings, out: _Collector) -> None:
    path = tree.files.get("manager.conf")
    if path is None:
        out.error(tree.root / "manager.conf", None, "ami-privilege", "manager.conf is missing")
        return
    try:
        users = sections_named(read_conf(path, tree.include_roots))
    except (ValueError, OSError) as exc:
        _parse_error(out, exc)
        return
    general = (users.pop("general", None) or [None])[0]
    if general is not None:
        bind = general.item("bindaddr")
        if bind is not None and bind.value not in ("127.0.0.1", "::1", "localhost"):
            out.warning(path, bind.line, "ami-privilege",
                        f"AMI listens on {bind.value}: plain-text AMI belongs on loopback (tunnel it)")
    name = settings.ami.username
    found = users.get(name)
    if not found:
        out.error(path, None, "ami-privilege", f"no AMI user [{name}] (cti's ami.username)")
    else:
        user = found[-1]
        read, read_line = _classes(user, "read")
        write, write_line = _classes(user, "write")
        for cls in sorted(read & set(DAEMON_READ_FORBIDDEN)):
            out.error(path, read_line, "ami-privilege", f"[{name}] read = {cls}: {DAEMON_READ_FORBIDDEN[cls]}")
        missing = DAEMON_READ_NEEDED - read
        if missing and "all" not in read:
            out.error(path, read_line, "ami-privilege",
                      f"[{name}] read lacks {', '.join(sorted(missing))}: cti would miss call/queue events or restarts")
        for cls in sorted(read - DAEMON_READ_ALLOWED - set(DAEMON_READ_FORBIDDEN)):
            out.warning(path, read_line, "ami-privilege", f"[{name}] read = {cls}: cti does not need it")
        for cls in sorted(write & set(DAEMON_WRITE_FORBIDDEN)):
            out.error(path, write_line, "ami-privilege", f"[{name}] write = {cls}: {DAEMON_WRITE_FORBIDDEN[cls]}")
        missing = DAEMON_WRITE_NEEDED - write
        if missing and "all" not in write:
            out.error(path, write_line, "ami-privilege",
                      f"[{name}] write lacks {', '.join(sorted(missing))}: cti needs it (QueueAdd/Pause, "
                      "Originate, CoreShowChannels resync, Status)")
        for cls in sorted(write - DAEMON_WRITE_NEEDED - set(DAEMON_WRITE_FORBIDDEN)):
            out.warning(path, write_line, "ami-privilege", f"[{name}] write = {cls}: cti does not need it")
        _check_user_basics(path, name, user, out)
    deploy_name = settings.deploy.ami_username
    if deploy_name and deploy_name != name and deploy_name in users:
        user = users[deploy_name][-1]
        read, read_line = _classes(user, "read")
        write, write_line = _classes(user, "write")
        for cls in sorted(write & set(DEPLOY_WRITE_FORBIDDEN)):
            out.error(path, write_line, "ami-privilege", f"[{deploy_name}] write = {cls}: {DEPLOY_WRITE_FORBIDDEN[cls]}")
        if "system" in write:
            out.warning(path, write_line, "ami-privilege",
                        f"[{deploy_name}] write = system: 'config' is enough for Reload; system adds ModuleLoad, DBPut")
        if not write & {"config", "system", "all"}:
            out.warning(path, write_line, "ami-privilege",
                        f"[{deploy_name}] cannot Reload (needs write = config): cti dialplan deploy would fail")
        for cls in sorted(read & {"dialplan", "all"}):
            out.error(path, read_line, "ami-privilege",
                      f"[{deploy_name}] read = {cls}: raw caller data forges AMI frames; the deploy user needs no events")
        _check_user_basics(path, deploy_name, user, out)
    elif deploy_name and deploy_name not in users and settings.deploy.reload == "ami":
        out.warning(path, None, "ami-privilege",
                    f"no AMI user [{deploy_name}] (deploy.ami_username): cti dialplan deploy over AMI cannot reload; "
                    "add it (write = config) or set deploy.reload = \"cli\"")
    elif deploy_name == name and settings.deploy.reload == "ami":
        out.error(path, None, "ami-privilege",
                  f"deploy.ami_username is the daemon's user [{name}]: reloads need 'config', which the daemon must not have")


def _check_user_basics(path: Path, name: str, user: Section, out: _Collector) -> None:
    secret = user.item("secret")
    if secret is not None and PLACEHOLDER_SECRET.search(secret.value):
        out.warning(path, secret.line, "ami-secret", f"[{name}] still has the published placeholder secret")
    if not user.values("permit"):
        out.warning(path, user.line, "ami-privilege", f"[{name}] has no permit/deny: any address may log in")
