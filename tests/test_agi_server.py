"""FastAGI server over real loopback sockets, against the Asterisk-like peer and raw peers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, AsyncIterator, Mapping

import pytest
import structlog
from structlog.testing import capture_logs

from cti.agi.peer import asterisk_env, environment_block, run_agi_call
from cti.agi.protocol import AgiEnvironment
from cti.agi.server import AgiServer

ROUTED = {"CTI_QUEUE": "mobile", "CTI_PRIORITY": "5", "CTI_GREETING": "hello", "CTI_CUSTOMER_ID": "C0001234", "CTI_LANG": "zh"}
FALLBACK = {"CTI_QUEUE": "appliances", "CTI_PRIORITY": "0", "CTI_GREETING": "cti-welcome", "CTI_CUSTOMER_ID": "", "CTI_LANG": "en"}


def _env(uniqueid: str = "1795372412.1", **kw: Any) -> dict[str, str]:
    return asterisk_env(uniqueid=uniqueid, callerid="13800138000", calleridname="Wang Wei", **kw)


class World:
    """A started server with recorded decisions."""

    def __init__(self) -> None:
        self.decisions: list[tuple[str, dict[str, str], float, str]] = []
        self.handler_calls = 0
        self.server: AgiServer | None = None

    def on_decision(self, env: AgiEnvironment, variables: Mapping[str, str], elapsed: float, outcome: str) -> None:
        self.decisions.append((env.uniqueid, dict(variables), elapsed, outcome))

    async def start(self, routes: Mapping[str, Any] | None = None, **kw: Any) -> AgiServer:
        async def incoming(env: AgiEnvironment) -> Mapping[str, str]:
            self.handler_calls += 1
            return ROUTED

        opts = dict(deadline_s=1.0, read_timeout_s=2.0, max_env_bytes=4096, on_decision=self.on_decision)
        opts.update(kw)
        self.server = AgiServer(routes if routes is not None else {"incoming": incoming}, lambda env: FALLBACK, **opts)
        await self.server.start("127.0.0.1", 0)
        return self.server

    async def settle(self) -> None:
        """Wait (bounded) until the server holds no session any more."""
        for _ in range(500):
            if self.server.active_sessions == 0:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{self.server.active_sessions} sessions still open")


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = World()
    loop = asyncio.get_running_loop()
    leaked: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: leaked.append(ctx))
    try:
        yield w
    finally:
        if w.server is not None:
            await w.server.close()
        loop.set_exception_handler(None)
    assert not leaked, leaked  # no "Task exception was never retrieved" and the like


def _events(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == event]


async def _raw_peer(port: int, payload: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    return reader, writer


async def _read_all(reader: asyncio.StreamReader, timeout: float = 5.0) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout)


# ---------------------------------------------------------------------------------------------


async def test_captured_call_gets_its_variables_in_order(world: World, captures: Path) -> None:
    server = await world.start()
    raw = (captures / "agi-session.in.raw").read_bytes()
    block = raw[: raw.index(b"\n\n") + 2]
    out = await run_agi_call("127.0.0.1", server.port, block)
    assert out.status == "SUCCESS" and out.error is None
    assert list(out.variables.items()) == list(ROUTED.items())
    assert out.commands == [f'SET VARIABLE {k} "{v}"' for k, v in ROUTED.items()]
    assert [(u, v, o) for u, v, _, o in world.decisions] == [("1795372412.1", ROUTED, "ok")]
    await world.settle()


async def test_many_concurrent_calls(world: World) -> None:
    server = await world.start()
    outs = await asyncio.gather(*(run_agi_call("127.0.0.1", server.port, _env(f"1.{i}")) for i in range(50)))
    assert all(o.status == "SUCCESS" and o.variables == ROUTED for o in outs)
    assert sorted(d[0] for d in world.decisions) == sorted(f"1.{i}" for i in range(50))


async def test_handler_failure_gives_the_fallback(world: World) -> None:
    async def broken(env: AgiEnvironment) -> Mapping[str, str]:
        raise RuntimeError("database is down")

    server = await world.start({"incoming": broken})
    with capture_logs() as logs:
        out = await run_agi_call("127.0.0.1", server.port, _env("7.1"))
    assert out.variables == FALLBACK and out.status == "SUCCESS"
    assert world.decisions[0][3] == "error"
    (line,) = _events(logs, "agi_fallback")
    assert line["reason"] == "error" and line["uniqueid"] == "7.1" and line["error"] == "RuntimeError"


async def test_handler_returning_garbage_gives_the_fallback(world: World) -> None:
    async def wrong(env: AgiEnvironment) -> Any:
        return ["CTI_QUEUE", "mobile"]

    server = await world.start({"incoming": wrong})
    out = await run_agi_call("127.0.0.1", server.port, _env())
    assert out.variables == FALLBACK and world.decisions[0][3] == "error"


async def test_slow_handler_is_cut_at_the_deadline(world: World) -> None:
    cancelled = asyncio.Event()

    async def slow(env: AgiEnvironment) -> Mapping[str, str]:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return ROUTED

    server = await world.start({"incoming": slow}, deadline_s=0.2)
    with capture_logs() as logs:
        t0 = time.monotonic()
        out = await run_agi_call("127.0.0.1", server.port, _env("7.2"))
        took = time.monotonic() - t0
    assert out.variables == FALLBACK and cancelled.is_set()
    assert 0.15 < took < 5.0  # generous: only says the deadline, not the handler, ended it
    uid, _, elapsed, outcome = world.decisions[0]
    assert outcome == "timeout" and 0.15 < elapsed < 5.0 and uid == "7.2"
    assert _events(logs, "agi_fallback")[0]["reason"] == "timeout"


async def test_handler_raising_its_own_timeout_is_an_error_not_a_deadline(world: World) -> None:
    async def inner_timeout(env: AgiEnvironment) -> Mapping[str, str]:
        raise TimeoutError("db pool")

    server = await world.start({"incoming": inner_timeout})
    out = await run_agi_call("127.0.0.1", server.port, _env())
    assert out.variables == FALLBACK and world.decisions[0][3] == "error"


async def test_unknown_route_gives_the_fallback(world: World) -> None:
    server = await world.start()
    with capture_logs() as logs:
        out = await run_agi_call("127.0.0.1", server.port, _env("7.3", script="nosuch?x=1"))
    assert out.variables == FALLBACK and world.handler_calls == 0
    assert world.decisions[0][3] == "unknown_route"
    (line,) = _events(logs, "agi_fallback")
    assert line["reason"] == "unknown_route" and line["route"] == "nosuch" and line["uniqueid"] == "7.3"


async def test_route_is_chosen_by_script(world: World) -> None:
    async def ivr(env: AgiEnvironment) -> Mapping[str, str]:
        return {"CTI_IVR": env.args[0] if env.args else ""}

    async def incoming(env: AgiEnvironment) -> Mapping[str, str]:
        return ROUTED

    server = await world.start({"incoming": incoming, "ivr": ivr})
    out = await run_agi_call("127.0.0.1", server.port, _env(script="ivr", args=("menu 1",)))
    assert out.variables == {"CTI_IVR": "menu 1"}


async def test_failing_fallback_and_decision_callback_do_not_break_the_call(world: World) -> None:
    def bad_fallback(env: AgiEnvironment) -> Mapping[str, str]:
        raise KeyError("no default")

    def bad_callback(*args: Any) -> None:
        raise ValueError("bus down")

    server = AgiServer({}, bad_fallback, deadline_s=1, read_timeout_s=2, on_decision=bad_callback)
    world.server = server
    await server.start("127.0.0.1", 0)
    with capture_logs() as logs:
        out = await run_agi_call("127.0.0.1", server.port, _env("7.4"))
    assert out.status == "SUCCESS" and out.variables == {} and out.commands == []
    assert {"agi_fallback_failed", "agi_on_decision_failed"} <= {e["event"] for e in logs}
    assert all(e.get("uniqueid") == "7.4" for e in logs if e["event"].startswith("agi_"))


async def test_decision_callback_errors_keep_the_variables(world: World) -> None:
    async def incoming(env: AgiEnvironment) -> Mapping[str, str]:
        return ROUTED

    def bad_callback(*args: Any) -> None:
        raise ValueError("bus down")

    server = AgiServer({"incoming": incoming}, lambda e: FALLBACK, deadline_s=1, read_timeout_s=2, on_decision=bad_callback)
    world.server = server
    await server.start("127.0.0.1", 0)
    out = await run_agi_call("127.0.0.1", server.port, _env())
    assert out.variables == ROUTED


async def test_invalid_variable_names_are_skipped(world: World) -> None:
    async def incoming(env: AgiEnvironment) -> Mapping[str, Any]:
        return {"CTI_QUEUE": "mobile", "BAD NAME": "x", "X\nSET VARIABLE Y": "1", "CTI_PRIORITY": 7, "CTI_NONE": None}

    server = await world.start({"incoming": incoming})
    with capture_logs() as logs:
        out = await run_agi_call("127.0.0.1", server.port, _env())
    assert out.variables == {"CTI_QUEUE": "mobile", "CTI_PRIORITY": "7", "CTI_NONE": ""}
    assert len(_events(logs, "agi_variable_skipped")) == 2


async def test_handler_logs_carry_the_uniqueid(world: World) -> None:
    seen: list[dict[str, Any]] = []

    async def incoming(env: AgiEnvironment) -> Mapping[str, str]:
        seen.append(structlog.contextvars.get_contextvars())
        return ROUTED

    server = await world.start({"incoming": incoming})
    await run_agi_call("127.0.0.1", server.port, _env("9.9"))
    assert seen == [{"uniqueid": "9.9"}]
    assert structlog.contextvars.get_contextvars().get("uniqueid") is None  # not leaked to the loop


async def test_non_utf8_environment_is_served(world: World) -> None:
    server = await world.start()
    block = environment_block(_env()).replace(b"Wang Wei", b"Wang \xff\xfe Wei\x01")
    out = await run_agi_call("127.0.0.1", server.port, block)
    assert out.variables == ROUTED


async def test_hostile_environment_is_served_with_the_genuine_extension(world: World, captures: Path) -> None:
    seen: list[AgiEnvironment] = []

    async def incoming(env: AgiEnvironment) -> Mapping[str, str]:
        seen.append(env)
        return ROUTED

    server = await world.start({"incoming": incoming})
    out = await run_agi_call("127.0.0.1", server.port, (captures / "agi-hostile-callerid.in.raw").read_bytes())
    assert out.variables == ROUTED and len(out.commands) == len(ROUTED)
    assert seen[0].extension == "8005551234" and seen[0].suspicious


# ---------------------------------------------------------------------------------------------
# misbehaving peers


async def test_peer_closing_before_the_blank_line_ends_the_session(world: World) -> None:
    server = await world.start()
    block = environment_block(_env("8.1"))
    with capture_logs() as logs:
        reader, writer = await _raw_peer(server.port, block[:200])
        writer.write_eof()
        assert await _read_all(reader) == b""  # the server closed, wrote nothing
        writer.close()
        await world.settle()
    (line,) = _events(logs, "agi_env_incomplete")
    assert line["reason"] == "peer_closed" and line["received"] == 200
    assert world.handler_calls == 0 and world.decisions == []


async def test_peer_stalling_mid_environment_is_dropped_after_the_read_timeout(world: World) -> None:
    server = await world.start(read_timeout_s=0.2)
    with capture_logs() as logs:
        t0 = time.monotonic()
        reader, writer = await _raw_peer(server.port, environment_block(_env())[:300])
        assert await _read_all(reader) == b""
        took = time.monotonic() - t0
        writer.close()
        await world.settle()
    assert 0.15 < took < 5.0
    assert _events(logs, "agi_env_incomplete")[0]["reason"] == "read_timeout"


async def test_huge_environment_is_refused(world: World) -> None:
    server = await world.start(max_env_bytes=4096)
    with capture_logs() as logs:
        reader, writer = await _raw_peer(server.port, b"agi_network: yes\nagi_calleridname: " + b"A" * 20000)
        try:
            assert await _read_all(reader) == b""
        except ConnectionResetError:
            pass  # the server aborted while we still had bytes in flight: just as good
        writer.close()
        await world.settle()
    assert _events(logs, "agi_env_rejected")[0]["reason"] == "too_large"
    assert world.handler_calls == 0


async def test_hangup_then_511_stops_the_dialogue(world: World) -> None:
    server = await world.start()
    with capture_logs() as logs:
        reader, writer = await _raw_peer(server.port, environment_block(_env("8.2")))
        first = await asyncio.wait_for(reader.readline(), 5)
        writer.write(b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n")
        rest = await _read_all(reader)
        writer.close()
        await world.settle()
    assert first == b'SET VARIABLE CTI_QUEUE "mobile"\n' and rest == b""
    (line,) = _events(logs, "agi_channel_dead")
    assert line["hangup"] is True and line["unsent"] == len(ROUTED) - 1 and line["uniqueid"] == "8.2"


async def test_caller_hangup_still_sets_variables_like_asterisk(world: World) -> None:
    server = await world.start()
    out = await run_agi_call("127.0.0.1", server.port, _env(), hangup_after=0)
    assert out.status == "HANGUP" and out.variables == ROUTED  # SET VARIABLE answers 200 after HANGUP


async def test_failed_and_refused_commands_do_not_stop_the_dialogue(world: World) -> None:
    server = await world.start()
    with capture_logs() as logs:
        reader, writer = await _raw_peer(server.port, environment_block(_env()))
        answers = [
            b"200 result=-1\n",
            b"510 Invalid or unknown command\n",
            b"junk line\n520-Invalid command syntax.  Proper usage follows:\nusage\n520 End of proper usage.\n",
            b"200 result=1\n",
            b"200 result=1\n",
        ]
        got = []
        for a in answers:
            got.append(await asyncio.wait_for(reader.readline(), 5))
            writer.write(a)
        assert await _read_all(reader) == b""
        writer.close()
        await world.settle()
    assert len(got) == len(ROUTED)
    assert [e.get("code") for e in _events(logs, "agi_command_failed")] == [None, 510, 520]
    assert _events(logs, "agi_unexpected_line")[0]["length"] == 9


async def test_peer_vanishing_mid_dialogue_leaks_nothing(world: World) -> None:
    server = await world.start()
    with capture_logs() as logs:
        reader, writer = await _raw_peer(server.port, environment_block(_env("8.3")))
        await asyncio.wait_for(reader.readline(), 5)
        writer.transport.abort()  # RST, no reply
        await world.settle()
    (line,) = _events(logs, "agi_peer_closed")
    assert line["uniqueid"] == "8.3" and line["unsent"] == len(ROUTED) - 1
    assert not _events(logs, "agi_session_failed")


async def test_peer_never_answering_is_dropped(world: World) -> None:
    server = await world.start(read_timeout_s=0.2)
    with capture_logs() as logs:
        reader, writer = await _raw_peer(server.port, environment_block(_env()))
        data = await _read_all(reader)
        writer.close()
        await world.settle()
    assert data == b'SET VARIABLE CTI_QUEUE "mobile"\n'
    assert _events(logs, "agi_reply_timeout")[0]["unsent"] == len(ROUTED)


async def test_close_cancels_calls_that_outlive_the_grace(world: World) -> None:
    started = asyncio.Event()

    async def stuck(env: AgiEnvironment) -> Mapping[str, str]:
        started.set()
        await asyncio.sleep(60)
        return ROUTED

    server = await world.start({"incoming": stuck}, deadline_s=60, close_grace_s=0.1)
    port = server.port
    call = asyncio.create_task(run_agi_call("127.0.0.1", port, _env()))
    idle_reader, idle_writer = await _raw_peer(server.port, b"agi_network: yes\n")  # still in its env
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(server.close(), 5)
    out = await asyncio.wait_for(call, 5)
    assert out.variables == {} and out.status == "SUCCESS"
    assert await _read_all(idle_reader) == b""
    idle_writer.close()
    assert server.active_sessions == 0
    refused = await run_agi_call("127.0.0.1", port, _env())
    assert refused.status == "FAILURE" and refused.error.startswith("connect")


async def test_close_lets_quick_calls_finish(world: World) -> None:
    async def quick(env: AgiEnvironment) -> Mapping[str, str]:
        await asyncio.sleep(0.05)
        return ROUTED

    server = await world.start({"incoming": quick}, close_grace_s=2)
    calls = [asyncio.create_task(run_agi_call("127.0.0.1", server.port, _env(f"2.{i}"))) for i in range(5)]
    for _ in range(200):
        if server.active_sessions == 5:
            break
        await asyncio.sleep(0.005)
    await server.close()
    outs = await asyncio.gather(*calls)
    assert all(o.variables == ROUTED for o in outs)


async def test_handler_ignoring_its_deadline_is_cut_off(world: World) -> None:
    async def stubborn(env: AgiEnvironment) -> Mapping[str, str]:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            pass  # swallows the deadline's cancellation
        await asyncio.sleep(30)
        return ROUTED

    server = await world.start({"incoming": stubborn}, deadline_s=0.1, read_timeout_s=0.3)
    with capture_logs() as logs:
        out = await run_agi_call("127.0.0.1", server.port, _env("8.4"), timeout=10)
        await world.settle()
    assert out.variables == {} and out.error is None
    (line,) = _events(logs, "agi_session_overrun")
    assert line["uniqueid"] == "8.4"


async def test_unsolicited_replies_are_not_taken_as_answers(world: World) -> None:
    server = await world.start()
    with capture_logs() as logs:
        # A reply flood before any command (e.g. after an empty line in a caller name) must
        # neither be queued nor answer the commands that follow.
        reader, writer = await _raw_peer(server.port, environment_block(_env()) + b"511 fake\n" * 200)
        got = []
        for _ in ROUTED:
            got.append(await asyncio.wait_for(reader.readline(), 5))
            writer.write(b"200 result=1\n")
        assert await _read_all(reader) == b""
        writer.close()
        await world.settle()
    assert got == [f'SET VARIABLE {k} "{v}"\n'.encode() for k, v in ROUTED.items()]
    (line,) = _events(logs, "agi_unexpected_line")
    assert line["kind"] == "unsolicited_reply"
    assert not _events(logs, "agi_channel_dead")


async def test_endless_multiline_reply_is_dropped(world: World) -> None:
    server = await world.start()
    with capture_logs() as logs:
        reader, writer = await _raw_peer(server.port, environment_block(_env()))
        await asyncio.wait_for(reader.readline(), 5)
        writer.write(b"520-usage follows\n" + b"usage\n" * 2000)
        try:
            await _read_all(reader)
        except ConnectionResetError:
            pass
        writer.close()
        await world.settle()
    assert _events(logs, "agi_reply_rejected")


async def test_deadline_holds_after_a_slow_environment(world: World) -> None:
    async def slow(env: AgiEnvironment) -> Mapping[str, str]:
        await asyncio.sleep(30)
        return ROUTED

    server = await world.start({"incoming": slow}, deadline_s=0.1, read_timeout_s=10.0)
    block = environment_block(_env())
    reader, writer = await _raw_peer(server.port, block[:100])
    await asyncio.sleep(0.3)  # the env arrives after the first (deadline-sized) timer tick
    t0 = time.monotonic()
    writer.write(block[100:])
    first = await asyncio.wait_for(reader.readline(), 15)
    took = time.monotonic() - t0
    writer.close()
    assert first == b'SET VARIABLE CTI_QUEUE "appliances"\n'
    assert took < 5.0  # the handler's deadline, not the 10 s read timeout, ended the wait
    assert world.decisions[0][3] == "timeout"


async def test_reply_timeout_holds_with_a_long_deadline(world: World) -> None:
    server = await world.start(deadline_s=30.0, read_timeout_s=0.2)
    with capture_logs() as logs:
        t0 = time.monotonic()
        reader, writer = await _raw_peer(server.port, environment_block(_env()))
        await _read_all(reader)
        took = time.monotonic() - t0
        writer.close()
        await world.settle()
    assert took < 10 and _events(logs, "agi_reply_timeout")
