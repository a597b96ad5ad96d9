"""Asking Asterisk to reload what a deploy changed, and reading back what it runs.

Two ways, chosen by ``deploy.reload``:

* ``ami`` (:class:`AmiAsterisk`): a short AMI session as a **deploy-only user** (``cti-deploy``
  in manager.conf, ``write = config``, no read class). The daemon's own user ``cti`` must not
  reload: in Asterisk 22 the ``Reload`` action needs ``system`` or ``config``, and both also
  grant ``GetConfig`` (every config file, secrets included); ``system`` moreover grants
  ``ModuleLoad``, ``DBPut``, ``MixMonitor`` and more. ``config`` is the narrower of the two
  (``Reload``, ``GetConfig``/``GetConfigJSON``, ``UpdateConfig``, ``CreateConfig``,
  ``ListCategories``, ``ShowDialPlan``), and a deploy user writes config files anyway. Its
  secret lives only where deploys run (``deploy.ami_secret`` / ``CTI_DEPLOY_AMI_SECRET``),
  never in the daemon's environment.
* ``cli`` (:class:`CliAsterisk`): ``asterisk -rx`` on the PBX host (needs access to the
  Asterisk control socket, i.e. the asterisk user or root); no AMI privilege at all.

Both offer the same three reloads and the same read-back: the steps of a context
(``ShowDialPlan`` / ``dialplan show``) and the queues with their strategy (``QueueStatus`` /
``queue show``).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

import structlog

from cti.ami.link import AmiActionError, AmiError, AmiSession
from cti.ami.protocol import AmiMessage, AmiParser
from cti.config import Settings

log = structlog.get_logger(__name__)

#: What each kind of change reloads, in the order they run.
RELOAD_ORDER = ("dialplan", "queues", "manager")


class ReloadError(RuntimeError):
    """Asterisk refused or failed a reload, or could not be reached."""


@dataclass(frozen=True)
class DialplanEntry:
    exten: str
    priority: int
    app: str
    data: str


@dataclass(frozen=True)
class ContextView:
    """A context as Asterisk runs it."""

    name: str
    entries: tuple[DialplanEntry, ...]
    includes: tuple[str, ...]

    def extensions(self) -> dict[str, list[str]]:
        """Extension -> application names in priority order."""
        out: dict[str, list[tuple[int, str]]] = {}
        for e in self.entries:
            if e.priority > 0:
                out.setdefault(e.exten, []).append((e.priority, e.app))
        return {k: [a for _, a in sorted(v)] for k, v in out.items()}


class Asterisk(Protocol):
    async def reload(self, what: str) -> str: ...
    async def context(self, name: str) -> ContextView | None: ...
    async def queues(self) -> dict[str, str]: ...
    async def close(self) -> None: ...


# --------------------------------------------------------------------------- AMI


class AmiAsterisk:
    """A short AMI session as the deploy user (``Events: off``)."""

    def __init__(self, host: str, port: int, username: str, secret: str, timeout: float = 10.0) -> None:
        self.host, self.port, self.username, self.secret, self.timeout = host, port, username, secret, timeout
        self.session: AmiSession | None = None
        self._reader: asyncio.Task[None] | None = None
        token = secrets.token_hex(4)
        counter = itertools.count(1)
        self._ids = lambda: f"cti-deploy-{token}-{next(counter)}"

    @classmethod
    def from_settings(cls, settings: Settings) -> "AmiAsterisk":
        d = settings.deploy
        return cls(d.ami_host or settings.ami.host, d.ami_port or settings.ami.port, d.ami_username,
                   d.ami_secret, d.verify_timeout_s)

    async def connect(self) -> "AmiAsterisk":
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise ReloadError(f"cannot reach AMI at {self.host}:{self.port}: {exc or type(exc).__name__}") from None
        session = AmiSession(reader, writer, AmiParser(), lambda msg, now: None, self._ids, time.time)
        self.session = session
        self._reader = asyncio.create_task(session.run(), name="cti-deploy-ami")
        try:
            await session.wait_banner(self.timeout)
            try:
                ch = await self._send("Challenge", {"AuthType": "MD5"})
                key = hashlib.md5((ch.get("Challenge") + self.secret).encode()).hexdigest()
                creds = {"AuthType": "MD5", "Username": self.username, "Key": key}
            except AmiActionError:
                creds = {"Username": self.username, "Secret": self.secret}
            await self._send("Login", {**creds, "Events": "off"})
        except AmiActionError as exc:
            await self.close()
            raise ReloadError(f"AMI login as {self.username!r} refused ({exc.message}): check deploy.ami_username "
                              "/ deploy.ami_secret and the user in manager.conf") from None
        except (AmiError, asyncio.TimeoutError) as exc:
            await self.close()
            raise ReloadError(f"AMI login as {self.username!r} failed: {exc or type(exc).__name__}") from None
        return self

    async def _send(self, action: str, headers: dict[str, str] | None = None, *, is_list: bool = False):
        if self.session is None or self.session.closed:
            raise ReloadError(f"AMI connection closed; {action} not sent")
        try:
            return await asyncio.wait_for(self.session.send(action, headers, is_list=is_list), self.timeout)
        except asyncio.TimeoutError:
            raise ReloadError(f"{action}: no answer from Asterisk within {self.timeout:g} s") from None
        except AmiActionError:
            raise
        except AmiError as exc:  # connection lost / closed
            raise ReloadError(f"{action}: {exc}") from None

    async def reload(self, what: str) -> str:
        action, headers = {
            "dialplan": ("Reload", {"Module": "pbx_config.so"}),
            "queues": ("QueueReload", {}),
            "manager": ("Reload", {"Module": "manager"}),
        }[what]
        try:
            msg = await self._send(action, headers)
        except AmiActionError as exc:
            hint = " (the deploy user needs write = config)" if exc.message == "Permission denied" else ""
            raise ReloadError(f"{action} {headers.get('Module', '')}: {exc.message}{hint}".replace("  ", " ")) from None
        except AmiError as exc:
            raise ReloadError(f"{action}: {exc}") from None
        return msg.get("Message")

    async def context(self, name: str) -> ContextView | None:
        try:
            items: list[AmiMessage] = await self._send("ShowDialPlan", {"Context": name}, is_list=True)
        except AmiActionError as exc:
            if exc.message.startswith("Did not find context"):
                return None
            raise ReloadError(f"ShowDialPlan {name}: {exc.message}") from None
        entries, includes = [], []
        for it in items:
            if it.name != "ListDialplan" or it.get("Context") != name:
                continue
            if it.get("IncludeContext"):
                includes.append(it.get("IncludeContext"))
                continue
            prio = it.get("Priority")
            if not prio.lstrip("-").isdigit():
                continue
            entries.append(DialplanEntry(it.get("Extension"), int(prio), it.get("Application"), it.get("AppData")))
        return ContextView(name, tuple(entries), tuple(includes))

    async def queues(self) -> dict[str, str]:
        try:
            items: list[AmiMessage] = await self._send("QueueStatus", {}, is_list=True)
        except AmiActionError as exc:
            raise ReloadError(f"QueueStatus: {exc.message}") from None
        return {it.get("Queue"): it.get("Strategy") for it in items if it.name == "QueueParams"}

    async def close(self) -> None:
        """Log off and close (the reader stops first: the EOF that follows is expected, not news)."""
        s, self.session = self.session, None
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
            self._reader = None
        if s is not None and not s.closed:
            try:
                s.send("Logoff").cancel()
                await asyncio.wait_for(s.writer.drain(), 2)
            except (AmiError, OSError, asyncio.TimeoutError):
                pass
            s.close()


# --------------------------------------------------------------------------- asterisk -rx


_CLI_RELOADS = {"dialplan": "dialplan reload", "queues": "queue reload all", "manager": "manager reload"}
_SHOW_LINE = re.compile(
    r"^\s*(?:'(?P<ext>[^']+)'\s*=>)?\s*(?:\[(?P<label>[^\]]+)\]\s*)?(?P<prio>\d+)\.\s*"
    r"(?P<app>[A-Za-z0-9_]+)\((?P<data>.*)\)\s+\[[^\]]+\]\s*$")
_SHOW_INCLUDE = re.compile(r"^\s*Include =>\s*'(?P<ctx>[^']+)'")
_QUEUE_LINE = re.compile(r"^(?P<name>\S+) has \d+ calls? .* in '(?P<strategy>[^']+)' strategy")


class CliAsterisk:
    """``asterisk [-C asterisk.conf] -rx COMMAND`` on the PBX host."""

    def __init__(self, binary: str = "asterisk", conf: str = "", timeout: float = 10.0) -> None:
        self.binary, self.conf, self.timeout = binary, conf, timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> "CliAsterisk":
        d = settings.deploy
        return cls(d.asterisk_bin, d.asterisk_conf, d.verify_timeout_s)

    async def connect(self) -> "CliAsterisk":
        out = await self.rx("core show version")
        if "Asterisk" not in out:
            raise ReloadError(f"{self.binary} -rx: no running Asterisk answered ({out.strip()[:200]!r})")
        return self

    async def rx(self, command: str) -> str:
        args = [self.binary] + (["-C", self.conf] if self.conf else []) + ["-rx", command]
        try:
            proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.STDOUT)
        except OSError as exc:
            raise ReloadError(f"cannot run {self.binary}: {exc}") from None
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise ReloadError(f"{self.binary} -rx {command!r}: no answer within {self.timeout:g} s") from None
        text = out.decode("utf-8", "replace")
        if proc.returncode != 0 or "Unable to connect to remote asterisk" in text:
            raise ReloadError(f"{self.binary} -rx {command!r} failed ({proc.returncode}): {text.strip()[:300]}")
        return text

    async def reload(self, what: str) -> str:
        out = await self.rx(_CLI_RELOADS[what])
        if re.search(r"No such (command|module)|not found|failed", out, re.I):
            raise ReloadError(f"{_CLI_RELOADS[what]}: {out.strip()[:300]}")
        return out.strip()

    async def context(self, name: str) -> ContextView | None:
        return parse_dialplan_show(await self.rx(f"dialplan show {name}"), name)

    async def queues(self) -> dict[str, str]:
        return parse_queue_show(await self.rx("queue show"))

    async def close(self) -> None:
        return None


def parse_dialplan_show(out: str, name: str) -> ContextView | None:
    """The output of ``dialplan show NAME`` (None: no such context)."""
    if "There is no existence of" in out or f"[ Context '{name}'" not in out:
        return None
    entries, includes = [], []
    exten: str | None = None
    in_ctx = False
    for line in out.splitlines():
        if line.startswith("[ Context "):
            in_ctx = line.startswith(f"[ Context '{name}'")
            continue
        if not in_ctx:
            continue
        inc = _SHOW_INCLUDE.match(line)
        if inc:
            includes.append(inc.group("ctx"))
            continue
        m = _SHOW_LINE.match(line)
        if not m:
            continue
        exten = m.group("ext") or exten
        if exten is not None:
            entries.append(DialplanEntry(exten, int(m.group("prio")), m.group("app"), m.group("data")))
    return ContextView(name, tuple(entries), tuple(includes))


def parse_queue_show(out: str) -> dict[str, str]:
    """Queue name -> strategy from the output of ``queue show``."""
    return {m.group("name"): m.group("strategy") for m in map(_QUEUE_LINE.match, out.splitlines()) if m}


async def connect_asterisk(settings: Settings) -> Asterisk:
    """The reload channel ``deploy.reload`` names, connected (raises ReloadError if unreachable)."""
    if settings.deploy.reload == "cli":
        return await CliAsterisk.from_settings(settings).connect()
    return await AmiAsterisk.from_settings(settings).connect()
