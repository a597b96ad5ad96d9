"""The Asterisk side of FastAGI: environment bytes and a client that answers like Asterisk 22.

Used by tests, benchmarks and the simulated PBX.  The environment is byte-exact with the
captures (``shared/asterisk-captures/agi-*.in.raw``); commands are read the way res_agi.c
reads them (an 8192-byte ``fgets`` buffer, a NUL cuts the line, the rest is the *next*
command) and split with :func:`cti.agi.protocol.parse_command_args`, a port of Asterisk's
``parse_args``, so a test sees exactly what a real Asterisk would store.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Iterable, Literal, Mapping

from .protocol import parse_command_args

__all__ = [
    "AgiOutcome",
    "AsteriskCommandReader",
    "AsteriskChannel",
    "asterisk_env",
    "environment_block",
    "run_agi_call",
]

AGI_BUF_LEN = 8192
SET_VARIABLE_USAGE = "Sets a variable to the current channel."
Status = Literal["SUCCESS", "FAILURE", "HANGUP"]


def asterisk_env(
    *,
    uniqueid: str,
    callerid: str,
    calleridname: str,
    dnid: str = "unknown",
    context: str = "cti-inbound",
    extension: str = "8005551234",
    script: str = "incoming",
    host: str = "127.0.0.1",
    port: int = 4573,
    channel: str | None = None,
    language: str = "en",
    args: Iterable[str] = (),
    callingpres: str = "0",
    **extra: str,
) -> dict[str, str]:
    """The environment Asterisk 22.10.1 sends for ``AGI(agi://host:port/script,args…)``.

    Keys come in Asterisk's order; ``extra`` overrides any key by its short name
    (``rdnis="…"``, ``priority="2"``, ``threadid="…"``, ``accountcode="…"``, ``type="PJSIP"``).
    """
    if channel is None:
        channel = f"Local/{extension}@{context}-00000000;2"
    env = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": f"agi://{host}:{port}/{script}" if script else f"agi://{host}:{port}",
        "agi_channel": channel,
        "agi_language": language,
        "agi_type": channel.split("/", 1)[0] if "/" in channel else "Local",
        "agi_uniqueid": uniqueid,
        "agi_version": "22.10.1",
        "agi_callerid": callerid,
        "agi_calleridname": calleridname,
        "agi_callingpres": callingpres,
        "agi_callingani2": "0",
        "agi_callington": "0",
        "agi_callingtns": "0",
        "agi_dnid": dnid,
        "agi_rdnis": "unknown",
        "agi_context": context,
        "agi_extension": extension,
        "agi_priority": "3",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": "139897454663360",
    }
    if not script:
        del env["agi_network_script"]  # Asterisk sends no script line for a bare URL
    for key, value in extra.items():
        full = key if key.startswith("agi_") else f"agi_{key}"
        env[full] = value
    for i, a in enumerate(args, 1):
        env[f"agi_arg_{i}"] = a
    return env


def environment_block(env: Mapping[str, str]) -> bytes:
    """``key: value\\n`` lines and the closing empty line, as Asterisk writes them.

    Values are written raw (no escaping, like Asterisk); strings are UTF-8 encoded with
    ``surrogateescape`` so a test can carry arbitrary bytes in them.
    """
    return "".join([f"{k}: {v}\n" for k, v in env.items()]).encode("utf-8", "surrogateescape") + b"\n"


class AsteriskCommandReader:
    """Splits the bytes a FastAGI server writes into command lines the way res_agi.c does.

    ``run_agi`` reads with ``fgets`` into an 8192-byte buffer until a ``\\n``: a longer line is
    cut at 8191 bytes and the rest read as the next command; a NUL ends the C string and the
    next ``fgets`` writes over it, so the rest of that line is lost and the following line is
    glued on.  At EOF a partial line is still executed.
    """

    __slots__ = ("_buf", "eof")

    def __init__(self) -> None:
        self._buf = b""
        self.eof = False

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        return self._drain()

    def feed_eof(self) -> list[bytes]:
        self.eof = True
        return self._drain()

    def _drain(self) -> list[bytes]:
        out = []
        while self._buf:
            nl = self._buf.find(b"\n")
            if 0 <= nl < AGI_BUF_LEN - 1 and b"\0" not in self._buf[:nl]:
                out.append(self._buf[:nl])  # the usual case
                self._buf = self._buf[nl + 1 :]
                continue
            cmd = self._take()
            if cmd is None:
                break
            out.append(cmd)
        return out

    def _take(self) -> bytes | None:
        stream, pos, buf, buflen, length = self._buf, 0, b"", 0, AGI_BUF_LEN
        while length > 1:
            limit = length - 1
            nl = stream.find(b"\n", pos, pos + limit)
            if nl >= 0:
                chunk = stream[pos : nl + 1]
            elif len(stream) - pos >= limit:
                chunk = stream[pos : pos + limit]
            elif self.eof:
                chunk = stream[pos:]
                pos += len(chunk)
                buf = buf[:buflen] + chunk
                break
            else:
                return None  # wait for more bytes
            pos += len(chunk)
            buf = buf[:buflen] + chunk
            z = buf.find(b"\0")
            buflen = len(buf) if z < 0 else z
            if buflen and buf[buflen - 1 : buflen] == b"\n":
                break
            length = AGI_BUF_LEN - buflen
        self._buf = stream[pos:]
        z = buf.find(b"\0")
        line = buf if z < 0 else buf[:z]
        if line.endswith(b"\n"):
            line = line[:-1]
        if not line and self.eof and not self._buf:
            return None
        return line


@dataclass
class AgiOutcome:
    """What the simulated channel saw: variables the server set (in order), command lines
    (decoded UTF-8), and ``AGISTATUS``."""

    variables: dict[str, str]
    commands: list[str]
    status: Status
    error: str | None = None
    replies: list[str] = field(default_factory=list)


_KNOWN_APPS = {"wait", "noop", "set", "playback", "answer", "verbose", "hangup", "queue", "goto", "log"}
_DEAD_OK = {"SET VARIABLE", "GET VARIABLE", "GET FULL VARIABLE", "VERBOSE", "EXEC", "NOOP", "CHANNEL STATUS", "HANGUP"}
_VAR_REF = re.compile(r"\$\{([^{}]*)\}")


class AsteriskChannel:
    """A channel's side of one AGI session, sans-IO: command line in, reply bytes out."""

    def __init__(
        self,
        variables: Mapping[str, str] | None = None,
        *,
        missing_sounds: Iterable[str] = (),
        sound_endpos: int = 6400,
    ) -> None:
        self.channel_vars: dict[str, str] = dict(variables or {})
        self.set_vars: dict[str, str] = {}
        self.commands: list[str] = []
        self.replies: list[str] = []
        self.missing_sounds = set(missing_sounds)
        self.sound_endpos = sound_endpos
        self.dead = False
        self.failed = False

    def execute(self, line: bytes) -> bytes:
        """Run one command line (without ``\\n``) and return Asterisk's reply."""
        self.commands.append(line.decode("utf-8", "replace"))
        argv = parse_command_args(line)
        reply = self._dispatch(argv)
        self.replies.append(reply)
        return reply.encode("utf-8", "surrogateescape")

    def _dispatch(self, argv: list[bytes]) -> str:
        words = [a.decode("utf-8", "surrogateescape") for a in argv]
        up = [w.upper() for w in words[:3]]
        for n in (3, 2, 1):
            name = " ".join(up[:n])
            if len(up) >= n and name in _HANDLERS:
                break
        else:
            return "510 Invalid or unknown command\n"
        if self.dead and name not in _DEAD_OK:
            return "511 Command Not Permitted on a dead channel or intercept routine\n"
        return _HANDLERS[name](self, words)

    def _usage(self, text: str = "Usage not documented here.") -> str:
        return f"520-Invalid command syntax.  Proper usage follows:\n{text}\n520 End of proper usage.\n"

    def _lookup(self, name: str) -> str | None:
        if name in self.set_vars:
            return self.set_vars[name]
        return self.channel_vars.get(name)

    def _set(self, w: list[str]) -> str:
        if len(w) != 4:
            return self._usage(SET_VARIABLE_USAGE)
        self.set_vars.pop(w[2], None)
        self.set_vars[w[2]] = w[3]
        return "200 result=1\n"

    def _get(self, w: list[str]) -> str:
        if len(w) != 3:
            return self._usage()
        v = self._lookup(w[2])
        return "200 result=0\n" if v is None else f"200 result=1 ({v})\n"

    def _get_full(self, w: list[str]) -> str:
        if len(w) not in (4, 5):
            return self._usage()
        value = _VAR_REF.sub(lambda m: self._lookup(m.group(1)) or "", w[3])
        return f"200 result=1 ({value})\n"

    def _verbose(self, w: list[str]) -> str:
        return self._usage() if len(w) < 2 else "200 result=1\n"

    def _stream(self, w: list[str]) -> str:
        if len(w) < 4 or len(w) > 5:
            return self._usage()
        if w[2] in self.missing_sounds:
            self.failed = True
            return "200 result=-1 endpos=0\n"
        return f"200 result=0 endpos={self.sound_endpos}\n"

    def _exec(self, w: list[str]) -> str:
        if len(w) < 2:
            return self._usage()
        return "200 result=0\n" if w[1].lower() in _KNOWN_APPS else "200 result=-2\n"

    def _status(self, w: list[str]) -> str:
        return "200 result=6\n"

    def _zero(self, w: list[str]) -> str:
        return "200 result=0\n"

    def _hangup_cmd(self, w: list[str]) -> str:
        self.dead = True
        return "200 result=1\n"


_HANDLERS = {
    "SET VARIABLE": AsteriskChannel._set,
    "GET VARIABLE": AsteriskChannel._get,
    "GET FULL VARIABLE": AsteriskChannel._get_full,
    "VERBOSE": AsteriskChannel._verbose,
    "STREAM FILE": AsteriskChannel._stream,
    "EXEC": AsteriskChannel._exec,
    "CHANNEL STATUS": AsteriskChannel._status,
    "ANSWER": AsteriskChannel._zero,
    "NOOP": AsteriskChannel._zero,
    "HANGUP": AsteriskChannel._hangup_cmd,
}


class _PeerProtocol(asyncio.Protocol):
    def __init__(self, chunks: list[bytes], channel: AsteriskChannel, hangup_after: int | None,
                 done: asyncio.Future[None]) -> None:
        self.chunks = chunks
        self.channel = channel
        self.hangup_after = hangup_after
        self.done = done
        self.reader = AsteriskCommandReader()
        self.transport: asyncio.Transport | None = None
        self.hung_up = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        for chunk in self.chunks:
            transport.write(chunk)  # type: ignore[attr-defined]
        if self.hangup_after == 0:
            self._hangup()

    def _hangup(self) -> None:
        self.hung_up = True
        self.channel.dead = True
        self.transport.write(b"HANGUP\n")

    def _run(self, lines: list[bytes]) -> None:
        ch = self.channel
        for line in lines:
            self.transport.write(ch.execute(line))
            if self.hangup_after is not None and not self.hung_up and len(ch.commands) >= self.hangup_after:
                self._hangup()

    def data_received(self, data: bytes) -> None:
        self._run(self.reader.feed(data))

    def eof_received(self) -> bool:
        self._run(self.reader.feed_eof())
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def run_agi_call(
    host: str,
    port: int,
    env: Mapping[str, str] | bytes,
    *,
    variables: Mapping[str, str] | None = None,
    hangup_after: int | None = None,
    missing_sounds: Iterable[str] = (),
    split_env: bool = True,
    timeout: float = 10.0,
) -> AgiOutcome:
    """Play one FastAGI call against a server the way Asterisk 22 does; return when it closes.

    ``env`` is an environment mapping (see :func:`asterisk_env`) or raw block bytes (replay a
    capture).  ``variables`` are the channel's variables before AGI (for ``GET VARIABLE``).
    ``hangup_after=N`` makes the caller hang up after N commands (0: right after the
    environment): Asterisk writes ``HANGUP`` and refuses ``STREAM FILE`` with 511 from then on.
    The environment goes out in two writes like the capture (``split_env``).  Status as
    ``AGISTATUS``: SUCCESS when the server closed, FAILURE when a command failed or the
    connection was refused, HANGUP after a simulated hang-up.  After ``timeout`` seconds
    without the server closing, the call is ended and ``error`` says so.
    """
    block = env if isinstance(env, (bytes, bytearray)) else environment_block(env)
    block = bytes(block)
    cut = block.find(b"\nagi_extension: ") + 1 if split_env else 0
    chunks = [block[:cut], block[cut:]] if cut > 0 else [block]
    channel = AsteriskChannel(variables, missing_sounds=missing_sounds)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    try:
        transport, proto = await asyncio.wait_for(
            loop.create_connection(lambda: _PeerProtocol(chunks, channel, hangup_after, done), host, port),
            timeout=2.0,  # MAX_AGI_CONNECT
        )
    except (OSError, asyncio.TimeoutError) as exc:
        return AgiOutcome({}, [], "FAILURE", error=f"connect: {exc.__class__.__name__}")
    error = None
    try:
        await asyncio.wait_for(asyncio.shield(done), timeout)
    except asyncio.TimeoutError:
        error = "timeout: server did not close the session"
        transport.abort()
        await done
    except asyncio.CancelledError:
        transport.abort()
        raise
    if proto.hung_up:
        status: Status = "HANGUP"
    elif channel.failed or error is not None:
        status = "FAILURE"
    else:
        status = "SUCCESS"
    return AgiOutcome(channel.set_vars, channel.commands, status, error, channel.replies)
