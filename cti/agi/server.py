"""Asyncio FastAGI server: read the environment, decide under a deadline, set variables, close.

One call is one TCP connection.  The transport is an :class:`asyncio.Protocol` around the
sans-IO parsers of :mod:`cti.agi.protocol`: the environment is parsed from the bytes as they
arrive; the route handler then runs at once in the same callback, and only a handler that has
to wait (a network database) continues in a task, under ``deadline_s``; each channel variable
is sent as one ``SET VARIABLE`` whose reply is read before the next (Asterisk executes one
command at a time), driven by the replies as they arrive.  Whatever happens (slow or failing
handler, unknown route) the call gets the fallback's variables; whatever the peer does (stalls,
vanishes, garbage, ``HANGUP``) the session ends within its time bounds and the socket is
closed, which ends ``AGI()``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Awaitable, Callable, Generator, Mapping

import structlog

from .origin import AGI_PEER
from .protocol import _OK_1  # the parser's shared reply object for "200 result=1"
from .protocol import (
    DEFAULT_MAX_ENV_BYTES,
    AgiEnvironment,
    AgiHangup,
    AgiProtocolError,
    AgiReply,
    AgiReplyParser,
    AgiUnexpectedLine,
    EnvironmentParser,
    EnvironmentTooLarge,
    set_variable,
)

__all__ = ["AgiServer", "RouteHandler", "Fallback", "DecisionCallback"]

log = structlog.get_logger(__name__)

RouteHandler = Callable[[AgiEnvironment], Awaitable[Mapping[str, str]]]
Fallback = Callable[[AgiEnvironment], Mapping[str, str]]
#: ``on_decision(env, variables, elapsed_seconds, outcome)``; outcome is one of
#: ``"ok"``, ``"timeout"``, ``"error"``, ``"unknown_route"``.
DecisionCallback = Callable[[AgiEnvironment, Mapping[str, str], float, str], None]

#: SET VARIABLE lines of recent short (name, value) pairs: queue names, priorities, greetings.
_COMMAND_CACHE: dict[tuple[object, object], bytes] = {}
_EOF = object()
_ENV, _DECIDE, _OVERRUN, _SEND, _DONE = "env", "decide", "overrun", "send", "done"
_TIMEOUT = object()
_OK_LINE = b"200 result=1\n"


class AgiServer:
    """FastAGI server that answers each call with channel variables and closes.

    ``routes`` maps a route name (:attr:`AgiEnvironment.network_script`, e.g. ``incoming``) to
    an async handler returning the variables to set, in order.  ``fallback(env)`` gives the
    variables of the default route, used when the handler misses ``deadline_s``, raises,
    returns something that is not a mapping, or the route is unknown.  ``on_decision(env,
    variables, elapsed_s, outcome)`` is called once per call right after the decision
    (``elapsed_s``: from the complete environment to the decision; outcome ``ok``,
    ``timeout``, ``error`` or ``unknown_route``); it must be cheap, its exceptions are logged.

    Time bounds per call: the environment must arrive within ``read_timeout_s`` of the
    connect; the handler gets ``deadline_s`` (a handler that swallows the cancellation is cut
    off ``read_timeout_s`` later, connection aborted); all replies must arrive within
    ``read_timeout_s`` of the first command.  ``close()`` gives open calls ``close_grace_s``.
    """

    def __init__(
        self,
        routes: Mapping[str, RouteHandler],
        fallback: Fallback,
        *,
        deadline_s: float,
        read_timeout_s: float,
        max_env_bytes: int = DEFAULT_MAX_ENV_BYTES,
        on_decision: DecisionCallback | None = None,
        close_grace_s: float = 1.0,
        peer_allowed: Callable[[str | None], bool] | None = None,
    ) -> None:
        if deadline_s <= 0 or read_timeout_s <= 0:
            raise ValueError("deadline_s and read_timeout_s must be positive")
        self.routes = dict(routes)
        self.fallback = fallback
        self.deadline_s = deadline_s
        self.read_timeout_s = read_timeout_s
        self.max_env_bytes = max_env_bytes
        self.on_decision = on_decision
        self.close_grace_s = close_grace_s
        #: ``peer_allowed(address)``: False closes the connection at once (agi.allowed_peers)
        self.peer_allowed = peer_allowed
        self.refused = 0
        self._server: asyncio.AbstractServer | None = None
        self._sessions: set[_AgiSession] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: asyncio.Event | None = None
        self._port: int | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 4573) -> None:
        """Listen on ``host:port`` (port 0 picks a free port, see :attr:`port`)."""
        if self._server is not None:
            raise RuntimeError("AGI server already started")
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(
            lambda: _AgiSession(self), host, port, reuse_address=True, backlog=1024
        )
        self._port = self._server.sockets[0].getsockname()[1]
        log.info("agi_listening", host=host, port=self._port)

    @property
    def port(self) -> int:
        """The bound TCP port (still known after :meth:`close`)."""
        if self._port is None:
            raise RuntimeError("AGI server not started")
        return self._port

    @property
    def active_sessions(self) -> int:
        """Connections currently open (for tests and metrics)."""
        return len(self._sessions)

    async def close(self) -> None:
        """Stop accepting; let open calls finish for ``close_grace_s``; cancel and await the rest."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if self._sessions:
            self._idle = asyncio.Event()
            try:
                await asyncio.wait_for(self._idle.wait(), self.close_grace_s)
            except TimeoutError:
                pass
        pending = [s.task for s in self._sessions if s.task is not None and not s.task.done()]
        for s in list(self._sessions):
            if s.task is None:
                s.abort()  # still reading its environment: nothing to answer yet
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.warning("agi_sessions_cancelled", count=len(pending))
        for s in list(self._sessions):
            s.abort()
        await server.wait_closed()
        log.info("agi_closed")

    async def __aenter__(self) -> "AgiServer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _AgiSession(asyncio.Protocol):
    """One FastAGI connection."""

    __slots__ = (
        "server",
        "loop",
        "transport",
        "env_parser",
        "replies",
        "env",
        "task",
        "timer",
        "phase",
        "due",
        "deadline_hit",
        "events",
        "hangup",
        "closed",
        "unexpected",
        "outstanding",
        "cmds",
        "cmd_i",
        "_log",
    )

    def __init__(self, server: AgiServer) -> None:
        self.server = server
        self.loop = server._loop
        self.transport: asyncio.Transport | None = None
        self.env_parser: EnvironmentParser | None = EnvironmentParser(server.max_env_bytes)
        self.replies: AgiReplyParser | None = None
        self.env: AgiEnvironment | None = None
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.phase = _ENV
        self.due = 0.0
        self.deadline_hit = False
        self.events: deque[object] = deque()
        self.hangup = False
        self.closed = False
        self.unexpected = 0
        self.outstanding = False  # a command was written and its reply has not arrived
        self.cmds: list[bytes] = []
        self.cmd_i = 0
        self._log: structlog.typing.FilteringBoundLogger | None = None

    # -- logging -------------------------------------------------------------------------------
    @property
    def log(self):  # noqa: ANN201 - structlog bound logger
        lg = self._log
        if lg is None:
            env = self.env
            if env is not None:
                lg = log.bind(uniqueid=env.uniqueid, route=env.network_script)
            else:
                lg = log.bind(uniqueid=None, peer=self._peer())
            self._log = lg
        return lg

    def _peer(self) -> str | None:
        t = self.transport
        peer = t.get_extra_info("peername") if t is not None else None
        return f"{peer[0]}:{peer[1]}" if peer else None

    # -- transport callbacks ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        allowed = self.server.peer_allowed
        if allowed is not None:
            peer = transport.get_extra_info("peername")
            if not allowed(peer[0] if peer else None):
                self.server.refused += 1
                self.phase = _DONE
                self.closed = True
                transport.abort()  # type: ignore[attr-defined]
                return
        self.server._sessions.add(self)
        # One timer per call: armed at the earliest moment any phase can expire; when it fires
        # before the current phase's due time it re-arms itself (rare: slow peers only).
        server = self.server
        now = self.loop.time()
        self.due = now + server.read_timeout_s
        self.timer = self.loop.call_at(now + min(server.read_timeout_s, server.deadline_s), self._on_timer)

    def data_received(self, data: bytes) -> None:
        if data == _OK_LINE and self.outstanding and self.replies.idle():  # the usual reply, in one read
            self.outstanding = False  # (outstanding: the command phase, see _step)
            self._handle(_OK_1)
            return
        if self.env is None:
            parser = self.env_parser
            try:
                env = parser.feed(data)
            except EnvironmentTooLarge:
                self.log.warning("agi_env_rejected", reason="too_large", limit=self.server.max_env_bytes)
                self.abort()
                return
            if env is None:
                return
            self.env = env
            self.env_parser = None
            self.phase = _DECIDE
            self._arm(self.loop.time() + self.server.deadline_s)
            self.replies = AgiReplyParser()
            if parser.rest:  # before any command: whatever came with the environment is unsolicited
                self._replies_received(parser.rest)
            self._start()
            return
        self._replies_received(data)

    def _replies_received(self, data: bytes) -> None:
        try:
            events = self.replies.feed(data)
        except AgiProtocolError:
            self.log.warning("agi_reply_rejected", reason="line_too_long")
            self._wake(_EOF)
            self.abort()
            return
        for ev in events:
            cls = ev.__class__
            if cls is AgiReply:
                if self.outstanding:
                    self.outstanding = False
                    self._wake(ev)
                    continue
                kind, length = "unsolicited_reply", len(ev.text)  # type: ignore[union-attr]
            elif cls is AgiHangup:
                self.hangup = True
                continue
            else:
                kind, length = "garbage", len(ev.line)  # type: ignore[union-attr]
            if not self.unexpected:  # log once: a hostile peer must not flood the log
                self.log.info("agi_unexpected_line", kind=kind, length=length)
            self.unexpected += 1

    def eof_received(self) -> bool:
        if self.env is None:
            self.log.warning("agi_env_incomplete", reason="peer_closed", received=self.env_parser.buffered)
        self._wake(_EOF)
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.task is None and self.timer is not None:  # else the call's task owns the timer
            self.timer.cancel()
            self.timer = None
        self._wake(_EOF)
        server = self.server
        server._sessions.discard(self)
        if not server._sessions and server._idle is not None:
            server._idle.set()

    # -- helpers -----------------------------------------------------------------------------
    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _arm(self, due: float) -> None:
        """Make the phase that starts now expire at ``due``; the armed timer is kept when it
        fires no later than that (it re-arms itself if early)."""
        self.due = due
        timer = self.timer
        if timer is None or timer.when() > due:
            if timer is not None:
                timer.cancel()
            self.timer = self.loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        if self.phase is _DONE or (self.closed and (self.phase is _ENV or self.phase is _SEND)):
            return
        now = self.loop.time()
        if now < self.due:
            self.timer = self.loop.call_at(self.due, self._on_timer)
            return
        phase = self.phase
        if phase is _ENV:
            received = self.env_parser.buffered if self.env_parser is not None else 0
            self.log.warning("agi_env_incomplete", reason="read_timeout", received=received)
            self.abort()
        elif phase is _DECIDE:
            # The handler's deadline: cancel it (like asyncio.timeout); keep a backstop in case
            # it swallows the cancellation.
            self.deadline_hit = True
            self.phase = _OVERRUN
            self._arm(now + self.server.read_timeout_s)
            self.task.cancel()
        elif phase is _OVERRUN:
            self.log.error("agi_session_overrun", deadline_s=self.server.deadline_s)
            self.abort()
            self.task.cancel()
        else:  # _SEND: Asterisk answers each command at once; this one is stuck
            self._wake(_TIMEOUT)

    def _wake(self, ev: object) -> None:
        if self.phase is _SEND:  # the command phase runs in these callbacks
            self._handle(ev)
        elif self.phase is not _DONE and ev is not _TIMEOUT:
            self.events.append(ev)  # before the first command (EOF during the decision)

    # -- the decision: run eagerly in the callback; a handler that suspends continues in a task --
    def _start(self) -> None:
        env = self.env
        structlog.contextvars.bind_contextvars(uniqueid=env.uniqueid)
        peer = self.transport.get_extra_info("peername")
        AGI_PEER.set(peer[0] if peer else None)  # which Asterisk: cti/agi/origin.py
        t0 = time.perf_counter()
        handler = self.server.routes.get(env.network_script)
        if handler is None:
            self.log.warning("agi_fallback", reason="unknown_route")
            self._decided(self._fallback(env), "unknown_route", t0)
            return
        try:
            aw = handler(env)
            send = getattr(aw, "send", None)
            if send is None:  # an awaitable that is not a coroutine: the general path
                self.task = self.loop.create_task(self._run(aw, t0))
                return
            try:
                first = send(None)
            except StopIteration as stop:
                result = stop.value
            else:  # it awaits something (a database round trip): go on in a task, under the deadline
                self.task = self.loop.create_task(self._run(_Resume(aw, first), t0))
                return
            self._decided(*self._checked(result), t0)
        except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - a failing handler gets the fallback
            self.log.warning("agi_fallback", reason="error", error=type(exc).__name__, exc_info=exc)
            self._decided(self._fallback(env), "error", t0)

    def _checked(self, variables: object) -> tuple[Mapping[str, str], str]:
        if not isinstance(variables, Mapping):
            raise TypeError(f"route handler returned {type(variables).__name__}, not a mapping")
        return variables, "ok"

    async def _run(self, aw: Awaitable[Mapping[str, str]], t0: float) -> None:
        """The rest of a decision that had to wait: ``aw`` under ``deadline_s``."""
        try:
            variables, outcome = await self._decide(aw)
            self._decided(variables, outcome, t0)
        except asyncio.CancelledError:
            self.log.warning("agi_session_cancelled")
            self._finish()
            raise
        except Exception:  # a bug here must not leak out of the task
            self.log.exception("agi_session_failed")
            self._finish()

    async def _decide(self, aw: Awaitable[Mapping[str, str]]) -> tuple[Mapping[str, str], str]:
        env = self.env
        try:
            try:
                variables = await aw
            except asyncio.CancelledError:
                if self.deadline_hit and self.task.uncancel() == 0:
                    raise TimeoutError from None  # our deadline, not a shutdown
                raise
            if self.deadline_hit:  # it swallowed the cancellation and answered late
                self.task.uncancel()
                raise TimeoutError
            return self._checked(variables)
        except TimeoutError:
            if not self.deadline_hit:
                self.log.exception("agi_fallback", reason="error")
                return self._fallback(env), "error"
            self.log.warning("agi_fallback", reason="timeout", deadline_s=self.server.deadline_s)
            return self._fallback(env), "timeout"
        except Exception as exc:
            self.log.warning("agi_fallback", reason="error", error=type(exc).__name__, exc_info=exc)
            return self._fallback(env), "error"

    def _decided(self, variables: Mapping[str, str], outcome: str, t0: float) -> None:
        """Report the decision, then send the variables (driven by the replies) and close."""
        cb = self.server.on_decision
        if cb is not None:
            try:
                cb(self.env, variables, time.perf_counter() - t0, outcome)
            except Exception:
                self.log.exception("agi_on_decision_failed")
        if self.closed:
            self._finish()
            return
        try:
            commands = self._commands(variables)
        except Exception:  # a bug here must not leave the caller in silence
            self.log.exception("agi_session_failed")
            commands = []
        if not commands:
            self._finish()
            return
        self.phase = _SEND
        self._arm(self.loop.time() + self.server.read_timeout_s)
        self.cmds, self.cmd_i = commands, 0
        self._step()

    # -- the command phase: driven from the transport callbacks, no await per reply -------------
    def _step(self) -> None:
        """Write command ``cmd_i``; an event that arrived earlier (EOF during the decision) answers it."""
        if self.closed:
            self._finish()
            return
        self.outstanding = True
        self.transport.write(self.cmds[self.cmd_i])
        if self.events:
            self._handle(self.events.popleft())

    def _handle(self, ev: object) -> None:
        """The answer to command ``cmd_i``: go on, or end the call."""
        i, n = self.cmd_i, len(self.cmds)
        if ev.__class__ is AgiReply:
            code = ev.code  # type: ignore[attr-defined]
            if code == 200:
                if ev.result is not None and ev.result < 0:  # type: ignore[attr-defined]
                    self.log.warning("agi_command_failed", command="SET VARIABLE", reply=ev.text[:80])  # type: ignore[attr-defined]
            elif code == 511:
                self.log.info("agi_channel_dead", hangup=self.hangup, unsent=n - i - 1)
                self._finish()
                return
            else:
                self.log.warning("agi_command_failed", command="SET VARIABLE", code=code)
            self.cmd_i = i + 1
            if self.cmd_i >= n:
                self._finish()
            else:
                self._step()
            return
        if ev is _TIMEOUT:
            self.log.warning("agi_reply_timeout", unsent=n - i)
        else:
            self.log.info("agi_peer_closed", hangup=self.hangup, unsent=n - i - 1)
        self._finish()

    def _finish(self) -> None:
        """End the call: no more timers, close the socket (which ends ``AGI()`` in Asterisk)."""
        if self.phase is _DONE:
            return
        self.phase = _DONE
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.closed:
            self.closed = True
            self.transport.close()

    def _fallback(self, env: AgiEnvironment) -> Mapping[str, str]:
        try:
            return self.server.fallback(env)
        except Exception:
            self.log.exception("agi_fallback_failed")
            return {}

    def _commands(self, variables: Mapping[str, str]) -> list[bytes]:
        """One ``SET VARIABLE`` line per variable (invalid names are skipped and logged)."""
        commands = []
        cache = _COMMAND_CACHE
        for name, value in variables.items():
            cmd = cache.get((name, value)) if value.__class__ is str else None
            if cmd is None:
                try:
                    cmd = set_variable(name, "" if value is None else str(value))
                except (ValueError, TypeError):
                    self.log.error("agi_variable_skipped", reason="invalid_name", name=str(name)[:40])
                    continue
                if value.__class__ is str and len(value) <= 64:
                    if len(cache) >= 4096:
                        cache.clear()
                    cache[(name, value)] = cmd
            commands.append(cmd)
        return commands


class _Resume:
    """Await a coroutine that already ran up to its first suspension (it yielded ``first``).

    ``_AgiSession._start`` runs a handler eagerly in the transport callback, which saves a task
    and two loop turns on every call whose handler never waits (the SQLite lookup). When it does
    wait, this hands the half-run coroutine to a task: the task sees the pending future, and
    sends, throws (cancellation at the deadline) and the result pass through unchanged.
    """

    __slots__ = ("coro", "first")

    def __init__(self, coro: Any, first: object) -> None:
        self.coro, self.first = coro, first

    def __await__(self) -> Generator[object, object, Any]:
        coro, value = self.coro, self.first
        self.coro = self.first = None
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - cancellation goes into the handler
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value
