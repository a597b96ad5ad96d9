"""The Asterisk side of a FastAGI session, as the simulated PBX plays it.

Built on :mod:`cti.agi.peer` (environment bytes exact to the captures, commands cut the way
res_agi.c's ``fgets`` cuts them, arguments split by a port of Asterisk's ``parse_args``, replies
as Asterisk words them). What this module adds for the PBX: a caller who hangs up *during* the
session (Asterisk writes ``HANGUP\\n`` unprompted, ``AGISTATUS=HANGUP``), a connect timeout on the
simulated clock, and a record of every command with its result code for the
``AGIExecStart``/``AGIExecEnd``/``VarSet`` events.

``AGISTATUS``: ``SUCCESS`` when the server closes; ``FAILURE`` when it cannot be reached (refused:
at once; no answer: after ``connect_timeout``) or a command failed (``STREAM FILE`` of a missing
sound); ``HANGUP`` when the caller hung up during the session.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Awaitable, Optional

import structlog

from cti.agi.peer import AsteriskChannel, AsteriskCommandReader, asterisk_env, environment_block

log = structlog.get_logger(__name__)

#: ``AGIExecEnd.Result`` by reply code (captures: 200 Success, 510, 520 Usage).
RESULT_TEXT = {200: "Success", 510: "Invalid or unknown command", 511: "Command Not Permitted", 520: "Usage"}


@dataclass(frozen=True)
class AgiCommand:
    command: str
    command_id: int
    result_code: int
    result: str
    variable: Optional[tuple[str, str]] = None  # what a successful SET VARIABLE set


@dataclass
class AgiResult:
    status: str  # SUCCESS | FAILURE | HANGUP
    variables: dict[str, str] = field(default_factory=dict)  # set by the server, in order
    commands: list[AgiCommand] = field(default_factory=list)


def environment(*, script: str, host: str, port: int, channel: str, uniqueid: str, callerid: str,
                calleridname: str, dnid: str, context: str, extension: str, priority: int,
                language: str = "en", args: tuple[str, ...] = (), threadid: int = 0) -> dict[str, str]:
    """The environment of ``AGI(agi://host:port/script,args...)`` on ``channel``."""
    return asterisk_env(uniqueid=uniqueid, callerid=callerid or "unknown", calleridname=calleridname or "unknown",
                        dnid=dnid or "unknown", context=context, extension=extension, script=script, host=host,
                        port=port, channel=channel, language=language, args=args, priority=str(priority),
                        threadid=str(threadid or random.randrange(10**14, 10**15)))


def _record(line: bytes, reply: bytes, channel: AsteriskChannel, command_id: int) -> AgiCommand:
    text = line.decode("utf-8", "surrogateescape")
    code = int(reply[:3]) if reply[:3].isdigit() else 510
    result = RESULT_TEXT.get(code, "Failure")
    if code == 200 and text.split()[:1] == ["EXEC"] and reply.startswith(b"200 result=-2"):
        result = "Unknown Result"
    variable = None
    words = text.split(None, 2)
    if code == 200 and [w.upper() for w in words[:2]] == ["SET", "VARIABLE"] and channel.set_vars:
        name = next(reversed(channel.set_vars))
        variable = (name, channel.set_vars[name])
    return AgiCommand(text, command_id, code, result, variable)


async def run_agi(host: str, port: int, env: dict[str, str], variables: dict[str, str], *,
                  connect_timeout: float = 2.0, hangup: Optional[Awaitable[None]] = None,
                  rng: Optional[random.Random] = None) -> AgiResult:
    """Play one FastAGI session against ``host:port``; ``variables`` are the channel's variables
    (and ``CALLERID(num)``-style functions) the server may read. ``hangup`` completes when the
    caller hangs up; the session then gets ``HANGUP`` and ends."""
    rng = rng or random.Random()
    result = AgiResult("SUCCESS")
    channel = AsteriskChannel(variables)
    hangup_task = asyncio.ensure_future(hangup) if hangup is not None else None
    try:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            log.info("sim.agi.unreachable", host=host, port=port, error=type(exc).__name__)
            result.status = "FAILURE"
            return result
        try:
            await _session(reader, writer, env, channel, result, hangup_task, rng)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass
    finally:
        if hangup_task is not None and not hangup_task.done():
            hangup_task.cancel()
    if result.status == "SUCCESS" and channel.failed:
        result.status = "FAILURE"
    result.variables = dict(channel.set_vars)
    return result


async def _session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, env: dict[str, str],
                   channel: AsteriskChannel, result: AgiResult, hangup_task: Optional[asyncio.Future],
                   rng: random.Random) -> None:
    commands = AsteriskCommandReader()
    try:
        block = environment_block(env)
        cut = block.find(b"\nagi_extension: ") + 1
        for chunk in (block[:cut], block[cut:]) if cut > 0 else (block,):
            writer.write(chunk)  # Asterisk writes it line by line: it arrives in two chunks
            await writer.drain()
        while True:
            read = asyncio.ensure_future(reader.read(65536))
            waits: set[asyncio.Future] = {read}
            if hangup_task is not None and not channel.dead:
                waits.add(hangup_task)
            try:
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                read.cancel()
                raise
            if hangup_task is not None and hangup_task in done and not channel.dead:
                channel.dead = True
                result.status = "HANGUP"
                writer.write(b"HANGUP\n")
                read.cancel()
                return
            data = read.result()
            lines = commands.feed(data) if data else commands.feed_eof()
            for line in lines:
                reply = channel.execute(line)
                result.commands.append(_record(line, reply, channel, rng.randrange(10**8, 2**31)))
                writer.write(reply)
            await writer.drain()
            if not data:
                return
    except (ConnectionError, OSError) as exc:
        log.info("sim.agi.session_lost", error=str(exc))
