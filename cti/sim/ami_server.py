"""The AMI side of the simulated Asterisk: a TCP server speaking the captured dialect.

Sans-IO part: :class:`ActionParser` turns bytes into :class:`Action` frames. The asyncio part,
:class:`AmiServer`, owns the listening socket and the sessions: banner, Login (plain and MD5
``Challenge``), ``Events``, ``Logoff``, ``Ping``, per-user read/write classes, and
:meth:`AmiServer.broadcast` of events filtered by each user's read classes (a user without
``dialplan`` never sees ``Newexten``/``VarSet``). Every other action goes to the handler table the
engine supplies.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Awaitable, Callable, Mapping, Optional, Sequence

import structlog

from cti.sim import ami_format as fmt
from cti.sim.config import AmiUser

log = structlog.get_logger(__name__)

Headers = list[tuple[str, fmt.Value]]


@dataclass(frozen=True)
class Action:
    """One client request: its headers in order (names as sent)."""

    headers: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        return self.get("Action")

    @property
    def action_id(self) -> Optional[str]:
        for key, value in self.headers:
            if key.lower() == "actionid":
                return value
        return None

    def get(self, key: str, default: str = "") -> str:
        key = key.lower()
        for k, value in self.headers:
            if k.lower() == key:
                return value
        return default

    def get_all(self, key: str) -> list[str]:
        key = key.lower()
        return [value for k, value in self.headers if k.lower() == key]

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.get(key).strip().lower()
        if not value:
            return default
        return value in ("true", "yes", "1", "on", "y", "t")


class ActionParser:
    """Bytes in, :class:`Action` out. Frames end with an empty line (CRLF or bare LF)."""

    MAX_FRAME = 64 * 1024

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[Action]:
        self._buffer += data.replace(b"\r\n", b"\n")
        actions = []
        while b"\n\n" in self._buffer:
            frame, self._buffer = self._buffer.split(b"\n\n", 1)
            headers = []
            for line in frame.split(b"\n"):
                if b":" not in line:
                    continue
                key, _, value = line.partition(b":")
                headers.append((key.strip().decode("utf-8", "replace"),
                                value.lstrip(b" ").decode("utf-8", "surrogateescape")))
            if headers:
                actions.append(Action(tuple(headers)))
        if len(self._buffer) > self.MAX_FRAME:
            raise ValueError("AMI frame too large")
        return actions


def response(kind: str, action: Action, *fields: tuple[str, fmt.Value]) -> Headers:
    """``Response: <kind>`` + the echoed ActionID + fields, in Asterisk's order."""
    headers: Headers = [("Response", kind)]
    if action.action_id is not None:
        headers.append(("ActionID", action.action_id))
    headers.extend(fields)
    return headers


def error(action: Action, message: str) -> Headers:
    return response("Error", action, ("Message", message))


def success(action: Action, message: str) -> Headers:
    return response("Success", action, ("Message", message))


class AmiSession:
    """One connected AMI client."""

    def __init__(self, server: "AmiServer", reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.username: Optional[str] = None
        self.user: Optional[AmiUser] = None
        self.events = True
        self.event_mask: Optional[frozenset[str]] = None  # ``Events: call,agent``: only these classes
        self.challenge: Optional[str] = None
        self.session_id = "0x" + secrets.token_hex(6)
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        sock = writer.get_extra_info("sockname") or ("127.0.0.1", 0)
        self.remote = f"IPV4/TCP/{peer[0]}/{peer[1]}"
        self.local = f"IPV4/TCP/{sock[0]}/{sock[1]}"

    @property
    def authenticated(self) -> bool:
        return self.user is not None

    def can_read(self, event_class: Optional[str]) -> bool:
        if not self.authenticated or not self.events:
            return False
        if event_class is None:
            return True
        if self.event_mask is not None and event_class not in self.event_mask:
            return False
        return event_class in self.user.read  # type: ignore[union-attr]

    def set_events(self, mask: str) -> None:
        """``Events``/``EventMask``: on, off, or a list of classes (``call,agent``)."""
        words = {w.strip().lower() for w in mask.split(",") if w.strip()}
        if not words or words <= {"off", "none", "no", "false", "0"}:
            self.events, self.event_mask = False, None
        elif words & {"on", "all", "yes", "true", "1"}:
            self.events, self.event_mask = True, None
        else:
            self.events, self.event_mask = True, frozenset(words)

    def can_write(self, action_classes: Optional[str]) -> bool:
        """``action_classes``: comma-separated classes, any of which allows the action."""
        if action_classes is None:
            return True
        return any(c in self.user.write for c in action_classes.split(","))  # type: ignore[union-attr]

    def send(self, *messages: Headers) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(b"".join(fmt.render_message(m) for m in messages))

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()


Handler = Callable[[AmiSession, Action], Awaitable[None]]


@dataclass(frozen=True)
class ActionSpec:
    handler: Handler
    write_class: Optional[str] = None  # manager.conf write class the user needs


class AmiServer:
    """Listening socket + sessions. ``actions`` maps lower-case action names to handlers."""

    def __init__(self, users: Mapping[str, AmiUser], actions: Mapping[str, ActionSpec], *,
                 host: str = "127.0.0.1", port: int = 5038, auth_fail_delay: float = 1.0,
                 clock: Callable[[], float] = time.time, boot_time: Optional[float] = None) -> None:
        self.users = dict(users)
        self.actions = {k.lower(): v for k, v in actions.items()}
        self.host = host
        self.port = port
        self.auth_fail_delay = auth_fail_delay
        self.clock = clock
        self.boot_time = boot_time if boot_time is not None else clock()
        self.reload_time = self.boot_time
        self.sessions: set[AmiSession] = set()
        self._server: Optional[asyncio.base_events.Server] = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("sim.ami.listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def drop_all(self) -> None:
        """End every session with a bare EOF (what ``core restart now`` looks like)."""
        for session in list(self.sessions):
            session.close()

    #: A session whose unread output grows past this is dropped (Asterisk: ``writetimeout``).
    MAX_BACKLOG = 4 * 1024 * 1024

    def broadcast(self, headers: Headers) -> None:
        """Send one event to every session whose user may read its class."""
        event_class = fmt.event_class(headers)
        data = fmt.render_message(headers)
        for session in list(self.sessions):
            if session.can_read(event_class) and not session.writer.is_closing():
                session.writer.write(data)
                if session.writer.transport.get_write_buffer_size() > self.MAX_BACKLOG:
                    log.warning("sim.ami.slow_client_dropped", username=session.username)
                    session.writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        session = AmiSession(self, reader, writer)
        self.sessions.add(session)
        parser = ActionParser()
        try:
            writer.write(fmt.BANNER)
            while not writer.is_closing():
                data = await reader.read(65536)
                if not data:
                    break
                for action in parser.feed(data):
                    keep = await self._dispatch(session, action)
                    if not keep:
                        await writer.drain()
                        return
                await writer.drain()
        except (ConnectionError, ValueError) as exc:
            log.info("sim.ami.session_lost", error=str(exc))
        except asyncio.CancelledError:
            pass
        finally:
            self.sessions.discard(session)
            session.close()
            self._tasks.discard(task)

    async def _dispatch(self, session: AmiSession, action: Action) -> bool:
        """Handle one action; False ends the session."""
        name = action.name.lower()
        if not name:
            session.send(error(action, fmt.MSG_MISSING_ACTION))
            return True
        if name == "login":
            return await self._login(session, action)
        if name == "challenge":
            session.challenge = f"{secrets.randbelow(10**9):d}"
            session.send(response("Success", action, ("Challenge", session.challenge)))
            return True
        if name == "logoff":
            session.send(response("Goodbye", action, ("Message", fmt.MSG_GOODBYE)))
            return False
        if not session.authenticated:
            session.send(error(action, fmt.MSG_PERMISSION_DENIED))
            return True
        if name == "ping":
            session.send(response("Success", action, ("Ping", "Pong"), ("Timestamp", f"{self.clock():.6f}")))
            return True
        if name == "events":
            session.set_events(action.get("EventMask", "off"))
            session.send(response("Success", action, ("Events", "On" if session.events else "Off")))
            return True
        spec = self.actions.get(name)
        if spec is None:
            session.send(error(action, fmt.unknown_action_message(action.name)))
            return True
        if not session.can_write(spec.write_class):
            session.send(error(action, fmt.MSG_PERMISSION_DENIED))
            return True
        try:
            await spec.handler(session, action)
        except Exception:  # a handler bug must not kill the PBX
            log.exception("sim.ami.handler_failed", action=action.name)
            session.send(error(action, "Internal error"))
        return not session.writer.is_closing()

    async def _login(self, session: AmiSession, action: Action) -> bool:
        username = action.get("Username")
        user = self.users.get(username)
        ok = False
        if user is not None:
            if action.get("AuthType").lower() == "md5":
                if session.challenge:
                    expected = hashlib.md5((session.challenge + user.secret).encode()).hexdigest()
                    ok = secrets.compare_digest(expected, action.get("Key").lower())
            else:
                ok = secrets.compare_digest(user.secret.encode(), action.get("Secret").encode())
        if not ok:
            log.info("sim.ami.login_failed", username=username)
            await asyncio.sleep(self.auth_fail_delay)
            session.send(error(action, fmt.MSG_AUTH_FAILED))
            return False
        session.user = user
        session.username = username
        session.set_events(action.get("Events", "on"))
        log.info("sim.ami.login", username=username, events=session.events)
        messages = [success(action, fmt.MSG_AUTH_ACCEPTED)]
        now = self.clock()
        booted = fmt.build_event("FullyBooted", {
            "Uptime": int(now - self.boot_time), "LastReload": int(now - self.reload_time),
            "Status": "Fully Booted"})
        if session.can_read("system"):
            messages.append(booted)
        if session.can_read("security"):
            tv = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
            messages.append(fmt.build_event("SuccessfulAuth", {
                "EventTV": tv, "Severity": "Informational", "Service": "AMI", "EventVersion": 1,
                "AccountID": username, "SessionID": session.session_id, "LocalAddress": session.local,
                "RemoteAddress": session.remote, "UsingPassword": 0, "SessionTV": tv}))
        session.send(*messages)
        return True


def list_response(session: AmiSession, action: Action, message: str, items: Sequence[Headers],
                  complete_event: str, **extra: fmt.Value) -> None:
    """A list action: ``Response: Success``/``EventList: start``, items, ``...Complete`` event."""
    start = response("Success", action, ("EventList", "start"), ("Message", message))
    complete = fmt.build_event(complete_event, {"EventList": "Complete", "ListItems": len(items), **extra},
                               action_id=action.action_id)
    session.send(start, *items, complete)
