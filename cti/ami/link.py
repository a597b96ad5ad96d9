"""The AMI connection lifecycle: connect, log in, watch, resync, reconnect.

Written on asyncio streams and cti's own sans-IO parser rather than around panoramisk's
``Manager`` (see the module README in ``cti/ami/__init__.py`` for why): one reader task
per connection parses and delivers every event *synchronously, in arrival order*; a
handler error is logged with the event and never kills the reader.

* Login by MD5 challenge (the secret never crosses the wire, never reaches a log). A
  refused login on the *first* connect raises :class:`AmiAuthError` naming
  ``ami.username``/``ami.secret``; later it is logged and retried like any loss.
* ``Events:`` asks only for the classes cti uses (``system,call,agent``): even an AMI
  user with ``read = all`` then gets no ``dialplan`` events (``Newexten``/``VarSet``
  carry raw caller data that can forge frames). A dialplan event that still arrives is
  logged once as a configuration warning and never used.
* Ping watchdog: a Ping every ``ping_interval`` s; no answer within ``ping_timeout`` s
  (half-open socket, hung PBX) closes the connection.
* Reconnect with capped exponential backoff and full jitter, reset once a connection has
  been up for ``STABLE_AFTER_S``. A frame cut by the disconnect is discarded.
* Resync after every (re)connect: ``QueueStatus`` + ``CoreShowChannels``; events that
  arrive meanwhile are buffered and applied after the snapshot, in order.
* Actions pending when the link drops fail with :class:`AmiDisconnectedError` and are
  **never re-sent** (an ``Originate`` must not dial a customer twice); actions while
  down fail at once with :class:`AmiNotConnectedError`.
* ActionIDs carry a per-process random token, so a forged frame cannot answer them.
* The PBX's version is read at login (``CoreSettings``, else the banner's AMI version):
  below Asterisk 16.0 ``Newexten`` is in the ``call`` class (see :mod:`cti.ami.version`),
  so cti warns, or refuses to connect with ``ami.min_version_policy = "refuse"``
  (:class:`AmiVersionError`, at start-up like a refused login).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import structlog

from cti.ami.integrity import tampering
from cti.ami.protocol import AmiMessage, AmiParser, encode_action
from cti.ami.version import SAFE_SINCE, PbxVersion, banner_ami_version
from cti.config import AmiConfig

log = structlog.get_logger(__name__)

#: Event classes requested at login (the ``Events:`` mask).
EVENT_CLASSES = "system,call,agent"
#: A connection up this long resets the backoff.
STABLE_AFTER_S = 60.0
#: Time allowed for connect + banner + login, and for each resync list.
CONNECT_TIMEOUT_S = 10.0
RESYNC_TIMEOUT_S = 30.0
#: Time allowed for the CoreSettings answer (the banner decides without it).
VERSION_TIMEOUT_S = 5.0
#: Headers that never appear in logs.
_SECRET_HEADERS = frozenset({"Secret", "Key"})


class AmiError(Exception):
    """Base of the AMI errors cti raises."""


class AmiActionError(AmiError):
    """Asterisk answered an action with ``Response: Error``; ``message`` is Asterisk's."""

    def __init__(self, action: str, message: str, response: AmiMessage | None = None) -> None:
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message
        self.response = response


class AmiAuthError(AmiActionError):
    """The PBX refused cti's login (wrong ``ami.username`` / ``ami.secret``)."""


class AmiVersionError(AmiError):
    """The PBX is older than Asterisk 16.0 and ``ami.min_version_policy`` is ``"refuse"``."""

    def __init__(self, version: PbxVersion) -> None:
        super().__init__(
            f"Asterisk {version.asterisk or '(AMI ' + version.ami + ')'} is older than "
            f"{'.'.join(map(str, SAFE_SINCE))}: its Newexten event is in the 'call' class cti reads, and its raw "
            "AppData can forge AMI frames. Upgrade Asterisk, or make sure manager.conf's cti user has the "
            "shipped eventfilter and set ami.min_version_policy = \"warn\" (CTI_AMI_MIN_VERSION_POLICY)")
        self.version = version


class AmiNotConnectedError(AmiError, ConnectionError):
    """No AMI connection right now; the action was not sent."""


class AmiDisconnectedError(AmiError, ConnectionError):
    """The connection dropped before Asterisk answered; the action is not re-sent."""


@dataclass
class _Pending:
    action: str
    future: asyncio.Future[Any]
    is_list: bool = False
    started: bool = False
    items: list[AmiMessage] = field(default_factory=list)


class AmiSession:
    """One TCP connection: writes actions, reads and routes messages (one reader task)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser: AmiParser,
                 on_message: Callable[[AmiMessage, float], None], ids: Callable[[], str],
                 clock: Callable[[], float]) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = parser
        self.on_message = on_message
        self._ids = ids
        self._clock = clock
        self.pending: dict[str, _Pending] = {}
        self.banner: str | None = None
        self._banner_seen = asyncio.get_running_loop().create_future()
        self.closed = False
        self.dialplan_warned = False
        #: why the connection was dropped for a tampered frame (cti.ami.integrity), or None
        self.tampered: str | None = None
        self.reader_task: asyncio.Task[None] | None = None

    def send(self, action: str, headers: dict[str, Any] | None = None, *, is_list: bool = False) -> asyncio.Future[Any]:
        if self.closed:
            raise AmiNotConnectedError(f"AMI connection closed; {action} not sent")
        action_id = self._ids()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[action_id] = _Pending(action, fut, is_list)
        hdrs = {"ActionID": action_id, **(headers or {})}
        self.writer.write(encode_action(action, hdrs))
        log.debug("ami.action_sent", action=action, action_id=action_id,
                  **{k: v for k, v in (headers or {}).items()
                     if v is not None and k not in _SECRET_HEADERS and k != "Variable"})
        return fut

    async def wait_banner(self, timeout: float) -> str:
        return await asyncio.wait_for(asyncio.shield(self._banner_seen), timeout)

    async def run(self) -> None:
        """Read until EOF or error; route responses and deliver events in order."""
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    log.warning("ami.eof", pending_bytes=self.parser.pending_bytes)
                    return
                now = self._clock()
                for msg in self.parser.feed(data):
                    if msg.kind != "banner" and (reason := tampering(msg.raw)) is not None:
                        # what follows on the wire may be forged frames: read nothing more of it
                        self.tampered = reason
                        log.warning("ami.tampered_frame", ami_event=msg.name, channel=msg.get("Channel"),
                                    reason=reason, hint="a caller's number carried line breaks into an AMI "
                                    "event; the connection is dropped and cti resyncs")
                        return
                    self._route(msg, now)
        except (ConnectionError, OSError) as exc:
            log.warning("ami.read_error", error=str(exc))
        finally:
            self.close()

    def _route(self, msg: AmiMessage, now: float) -> None:
        if msg.kind == "banner":
            self.banner = msg.name
            if not self._banner_seen.done():
                self._banner_seen.set_result(msg.name)
            return
        pend = None
        if self.pending:
            aid = msg.action_id
            if aid is not None and not msg.is_dialplan_class:
                pend = self.pending.get(aid)
        if pend is None:
            if msg.kind == "event":
                if msg.is_dialplan_class and not self.dialplan_warned:
                    self.dialplan_warned = True
                    log.warning("ami.dialplan_events_received",
                                hint="the AMI user reads the 'dialplan' class: raw caller data can forge "
                                     "frames; use read = system,call,agent,user,reporting")
                try:
                    self.on_message(msg, now)
                except Exception:  # the reader must survive any handler bug
                    log.exception("ami.handler_error", ami_event=msg.name, uniqueid=msg.get("Uniqueid"))
            else:
                log.debug("ami.unmatched_response", response=msg.name, action_id=msg.action_id)
            return
        self._settle(msg.action_id or "", pend, msg)

    def _settle(self, aid: str, pend: _Pending, msg: AmiMessage) -> None:
        fut = pend.future
        if msg.kind == "response":
            if msg.name in ("Error", "Fail", "Failure"):
                del self.pending[aid]
                if not fut.done():
                    fut.set_exception(AmiActionError(pend.action, msg.get("Message", msg.name), msg))
                return
            if pend.is_list and (msg.get("EventList").lower() == "start" or "will follow" in msg.get("Message")):
                pend.started = True
                return
            del self.pending[aid]
            if not fut.done():
                fut.set_result([] if pend.is_list else msg)
            return
        # an event carrying our ActionID: a list item, or the list's end
        if pend.is_list:
            if msg.name.endswith("Complete") or msg.get("EventList").lower() == "complete":
                del self.pending[aid]
                if not fut.done():
                    fut.set_result(pend.items)
            else:
                pend.items.append(msg)
            return
        # e.g. OriginateResponse for an Originate already answered: deliver as an event
        try:
            self.on_message(msg, self._clock())
        except Exception:
            log.exception("ami.handler_error", ami_event=msg.name)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.writer.close()
        except Exception:  # pragma: no cover - transport already gone
            pass
        if not self._banner_seen.done():
            self._banner_seen.set_exception(AmiDisconnectedError("connection closed before the banner"))
            self._banner_seen.exception()  # mark retrieved
        pending, self.pending = self.pending, {}
        for pend in pending.values():
            if not pend.future.done():
                pend.future.set_exception(AmiDisconnectedError(
                    f"AMI connection lost before the answer to {pend.action}; it was not re-sent"
                    + (" (the call may or may not have been placed)" if pend.action == "Originate" else "")))
        self.parser.reset()


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with jitter: uniform in [d/2, d], d = min(high, low * 2**attempt)."""
    d = min(high, low * (2 ** min(attempt, 30)))
    r = (rng or random).random()
    return d / 2 + r * d / 2


class AmiLink:
    """Keeps one AMI session alive and the live state fed. Owned by :class:`~cti.ami.service.AmiService`."""

    def __init__(
        self,
        config: AmiConfig,
        *,
        on_event: Callable[[AmiMessage, float], None],
        on_resync: Callable[[list[AmiMessage], float], None],
        on_link: Callable[[str, dict[str, Any]], None] = lambda state, info: None,
        clock: Callable[[], float] = time.time,
        stable_after: float = STABLE_AFTER_S,
    ) -> None:
        self.config = config
        self._on_event = on_event
        self._on_resync = on_resync
        self._on_link = on_link
        self._clock = clock
        self.stable_after = stable_after
        self.parser = AmiParser()
        self.session: AmiSession | None = None
        self._token = secrets.token_hex(4)
        self._counter = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._buffer: list[tuple[AmiMessage, float]] | None = None
        self.ready = asyncio.Event()
        self.connects = 0
        self.resyncs = 0
        #: connections dropped because a frame was tampered with (cti.ami.integrity)
        self.tampered_frames = 0
        #: what the PBX said about its version at the last login
        self.pbx_version: PbxVersion | None = None
        self.log = log.bind(ami_server=config.server, ami_host=config.host, ami_port=config.port)

    # -- public ---------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.session is not None and not self.session.closed and self.ready.is_set()

    async def start(self) -> None:
        """Connect once; a refused login raises :class:`AmiAuthError`. Then keep the link up in the background."""
        self._stopping = False
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(first), name=f"ami-link-{self.config.server}")
        await first

    async def stop(self) -> None:
        self._stopping = True
        if self.session is not None:
            self.session.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    async def action(self, action: str, headers: dict[str, Any] | None = None, *, is_list: bool = False,
                     timeout: float = 10.0) -> Any:
        """Send an action and await Asterisk's answer (an :class:`AmiMessage`, or a list's items)."""
        s = self.session
        if s is None or s.closed:
            raise AmiNotConnectedError(f"AMI not connected; {action} not sent")
        fut = s.send(action, headers, is_list=is_list)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            for aid, pend in list(s.pending.items()):  # a late answer is then just ignored
                if pend.future is fut:
                    del s.pending[aid]
            raise AmiError(f"{action}: no answer from Asterisk within {timeout:g} s") from None

    # -- lifecycle -------------------------------------------------------------------
    def _next_id(self) -> str:
        return f"cti-{self._token}-{next(self._counter)}"

    async def _run(self, first: asyncio.Future[None]) -> None:
        attempt = 0
        while not self._stopping:
            up_since = None
            try:
                session = await self._connect()
            except AmiVersionError as exc:
                if not first.done():
                    first.set_exception(exc)
                    return
                self.log.error("ami.pbx_version_refused", asterisk_version=exc.version.asterisk or None,
                               ami_version=exc.version.ami or None, policy="refuse")
            except AmiAuthError as exc:
                if not first.done():
                    first.set_exception(AmiAuthError(
                        "Login", f"{exc.message}: the PBX refused ami.username={self.config.username!r}; "
                        "check ami.secret / ami.username (CTI_AMI_SECRET, CTI_AMI_USERNAME)", exc.response))
                    return
                self.log.error("ami.login_refused", message=exc.message, username=self.config.username)
            except (OSError, asyncio.TimeoutError, AmiError) as exc:
                self.log.warning("ami.connect_failed", error=str(exc) or type(exc).__name__, attempt=attempt)
                if not first.done():
                    first.set_result(None)  # unreachable at start: keep trying in the background
            else:
                up_since = self._clock()
                if not first.done():
                    first.set_result(None)
                await self._serve(session)
            if self._stopping:
                break
            if up_since is not None and self._clock() - up_since >= self.stable_after:
                attempt = 0
            delay = backoff_delay(attempt, self.config.reconnect_min, self.config.reconnect_max)
            attempt += 1
            self.log.info("ami.reconnect_scheduled", delay_s=round(delay, 3), attempt=attempt)
            await asyncio.sleep(delay)

    async def _connect(self) -> AmiSession:
        self.parser.reset()
        self.ready.clear()
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.config.host, self.config.port), CONNECT_TIMEOUT_S)
        session = AmiSession(reader, writer, self.parser, self._deliver, self._next_id, self._clock)
        self.session = session
        reader_task = asyncio.create_task(session.run(), name="ami-reader")
        session.reader_task = reader_task
        try:
            banner = await session.wait_banner(CONNECT_TIMEOUT_S)
            self._buffer = []  # from login on, events wait for the resync snapshot
            await self._login(session)
            self.pbx_version = await self._check_version(session, banner)
        except BaseException:
            session.close()
            reader_task.cancel()
            self._buffer = None
            raise
        self.connects += 1
        self.log.info("ami.connected", banner=banner, username=self.config.username)
        return session

    async def _login(self, session: AmiSession) -> None:
        user = self.config.username
        try:
            ch = await asyncio.wait_for(session.send("Challenge", {"AuthType": "MD5"}), CONNECT_TIMEOUT_S)
            key = hashlib.md5((ch.get("Challenge") + self.config.secret).encode()).hexdigest()
            creds = {"AuthType": "MD5", "Username": user, "Key": key}
        except AmiActionError as exc:
            # never the secret in clear by default: anyone on the path (or a fake PBX that refuses the
            # challenge on purpose) would read it
            if not self.config.allow_plaintext_login:
                raise AmiAuthError("Challenge", f"{exc.message}: the PBX refused the MD5 challenge and cti "
                                   "does not send ami.secret in clear unless ami.allow_plaintext_login = true",
                                   exc.response) from None
            self.log.warning("ami.plaintext_login", username=user, reason=exc.message)
            creds = {"Username": user, "Secret": self.config.secret}
        fut = session.send("Login", {**creds, "Events": EVENT_CLASSES})
        try:
            await asyncio.wait_for(fut, CONNECT_TIMEOUT_S)
        except AmiActionError as exc:
            raise AmiAuthError("Login", exc.message, exc.response) from None

    async def _check_version(self, session: AmiSession, banner: str) -> PbxVersion:
        """Read Asterisk's version; warn (or raise :class:`AmiVersionError`) below 16.0."""
        asterisk = ""
        fut = session.send("CoreSettings")
        try:
            asterisk = (await asyncio.wait_for(fut, VERSION_TIMEOUT_S)).get("AsteriskVersion")
        except (AmiActionError, asyncio.TimeoutError):  # no 'system'/'reporting' write class, or no answer
            for aid, pend in list(session.pending.items()):
                if pend.future is fut:
                    del session.pending[aid]
        version = PbxVersion(asterisk, banner_ami_version(banner))
        fields = {"asterisk_version": version.asterisk or None, "ami_version": version.ami or None}
        if not version.unsafe:
            self.log.info("ami.pbx_version", **fields)
            return version
        if self.config.min_version_policy == "refuse":
            raise AmiVersionError(version)
        self.log.warning("ami.pbx_version_unsafe", **fields, policy="warn",
                         hint="below Asterisk 16.0 Newexten is in the 'call' class cti reads: raw caller data "
                              "can forge AMI frames unless the cti user has the shipped eventfilter "
                              "(asterisk-config/manager.conf); upgrade, or set ami.min_version_policy = \"refuse\"")
        return version

    async def _serve(self, session: AmiSession) -> None:
        reader_task = session.reader_task
        assert reader_task is not None
        pinger = asyncio.create_task(self._ping_loop(session), name="ami-ping")
        resync = asyncio.create_task(self._resync(session), name="ami-resync")
        v = self.pbx_version
        self._on_link("connected", {"banner": session.banner, "asterisk_version": v.asterisk if v else None})
        try:
            await reader_task
        finally:
            for t in (pinger, resync):
                t.cancel()
            for t in (pinger, resync):
                try:
                    await t
                except (asyncio.CancelledError, Exception):
                    pass
            session.close()
            if session.tampered is not None:
                self.tampered_frames += 1
            self.ready.clear()
            self._buffer = None
            self.session = None if self.session is session else self.session
            (self.log.info if self._stopping else self.log.warning)("ami.disconnected")
            self._on_link("disconnected", {})

    async def _resync(self, session: AmiSession) -> None:
        try:
            qs = session.send("QueueStatus", is_list=True)
            cs = session.send("CoreShowChannels", is_list=True)
            items = await asyncio.wait_for(qs, RESYNC_TIMEOUT_S)
            items += await asyncio.wait_for(cs, RESYNC_TIMEOUT_S)
        except (AmiError, asyncio.TimeoutError) as exc:
            self.log.error("ami.resync_failed", error=str(exc) or type(exc).__name__)
            session.close()
            return
        now = self._clock()
        buffered, self._buffer = self._buffer or [], None
        try:
            self._on_resync(items, now)
        except Exception:
            self.log.exception("ami.resync_handler_error", items=len(items))
        for msg, at in buffered:
            self._call_handler(msg, at)
        self.resyncs += 1
        self.ready.set()
        self.log.info("ami.resynced", items=len(items), buffered=len(buffered))

    async def _ping_loop(self, session: AmiSession) -> None:
        interval, timeout = self.config.ping_interval, self.config.ping_timeout
        while not session.closed:
            await asyncio.sleep(interval)
            try:
                await asyncio.wait_for(session.send("Ping"), timeout)
            except asyncio.TimeoutError:
                self.log.warning("ami.ping_timeout", timeout_s=timeout)
                session.close()
                return
            except AmiError:
                return

    # -- events ------------------------------------------------------------------------
    def _deliver(self, msg: AmiMessage, now: float) -> None:
        if self._buffer is not None:
            self._buffer.append((msg, now))
            return
        self._call_handler(msg, now)

    def _call_handler(self, msg: AmiMessage, now: float) -> None:
        try:
            self._on_event(msg, now)
        except Exception:
            self.log.exception("ami.handler_error", ami_event=msg.name, uniqueid=msg.get("Uniqueid") or None)
