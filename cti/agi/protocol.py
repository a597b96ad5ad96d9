"""FastAGI wire protocol, sans-IO: bytes in, frozen dataclasses out, bytes for commands.

Three parts, each checked against a real Asterisk 22 (``shared/asterisk-captures``):

* the environment block Asterisk writes on connect (:class:`EnvironmentParser`);
* the replies it writes to each command (:class:`AgiReplyParser`);
* the command lines cti writes (:func:`set_variable`, :func:`verbose`, :func:`command`), escaped
  for Asterisk's own tokenizer, which :func:`parse_command_args` reproduces.

The environment is **not escaped** by Asterisk: a caller name can carry CR, LF and whole fake
``agi_…:`` lines.  Asterisk always writes the keys in one fixed order (``setup_env`` in
res_agi.c) and only some values can carry caller data, so the parser keeps the one reading of
the block in which every key sits at its fixed place and stray lines only follow a value that
can hold caller data; everything else is ignored (see :func:`parse_environment`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Iterator, Mapping, Union

__all__ = [
    "AgiEnvironment",
    "AgiHangup",
    "AgiProtocolError",
    "AgiReply",
    "AgiReplyParser",
    "AgiUnexpectedLine",
    "EnvironmentParser",
    "EnvironmentTooLarge",
    "DEFAULT_MAX_ENV_BYTES",
    "MAX_VALUE_BYTES",
    "command",
    "is_valid_variable_name",
    "parse_command_args",
    "parse_environment",
    "quote_arg",
    "sanitize_value",
    "set_variable",
    "verbose",
]

DEFAULT_MAX_ENV_BYTES = 16384
#: Cap of one escaped, UTF-8 encoded value in a command line.  Asterisk reads a command with a
#: fixed 8192-byte buffer and treats whatever does not fit as the *next* command.
MAX_VALUE_BYTES = 4000
MAX_VARIABLE_NAME = 80


class AgiProtocolError(Exception):
    """The peer broke the FastAGI protocol."""


class EnvironmentTooLarge(AgiProtocolError):
    """The environment block grew past the configured size without its closing empty line."""


# --------------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------------

#: Keys in the order Asterisk 22 writes them (launch_netscript + setup_env), then agi_arg_N.
ENV_KEYS: tuple[str, ...] = (
    "agi_network",
    "agi_network_script",
    "agi_request",
    "agi_channel",
    "agi_language",
    "agi_type",
    "agi_uniqueid",
    "agi_version",
    "agi_callerid",
    "agi_calleridname",
    "agi_callingpres",
    "agi_callingani2",
    "agi_callington",
    "agi_callingtns",
    "agi_dnid",
    "agi_rdnis",
    "agi_context",
    "agi_extension",
    "agi_priority",
    "agi_enhanced",
    "agi_accountcode",
    "agi_threadid",
)
_RANK = {k: i for i, k in enumerate(ENV_KEYS)}
_R_NETWORK, _R_SCRIPT, _R_REQUEST = 0, 1, 2
_R_THREADID = _RANK["agi_threadid"]
_R_ARG1 = _R_THREADID + 1
#: Values that may carry caller- or dialplan-supplied text (so possibly stray lines after them).
_CALLER_DATA_RANKS = frozenset(
    _RANK[k] for k in ("agi_network_script", "agi_request", "agi_callerid", "agi_calleridname", "agi_dnid", "agi_rdnis")
)
_MAX_ARGS = 127


def _rank(key: str) -> int:
    r = _RANK.get(key)
    if r is not None:
        return r
    if key.startswith("agi_arg_"):
        n = key[8:]
        if n.isdigit() and n[0] != "0" and n.isascii() and int(n) <= _MAX_ARGS:
            return _R_THREADID + int(n)
    return -1


def _follows(prev: int, r: int) -> bool:
    """True when Asterisk writes key rank ``r`` right after key rank ``prev``."""
    if prev == _R_NETWORK:
        return r == _R_SCRIPT or r == _R_REQUEST  # agi_network_script is absent for a bare URL
    return r == prev + 1


def _may_carry_data(r: int) -> bool:
    return r in _CALLER_DATA_RANKS or r >= _R_ARG1


@dataclass(frozen=True, slots=True)
class AgiEnvironment(Mapping[str, str]):
    """The FastAGI environment: a read-only mapping of ``agi_*`` keys plus typed accessors.

    ``ignored_lines`` counts lines of the block that were not taken as keys (stray lines, fake
    keys); ``strict`` is False when the block did not follow Asterisk's fixed layout at all and
    was read leniently (first occurrence of a key wins).  ``suspicious`` is either of them.
    """

    fields: Mapping[str, str]
    ignored_lines: int = 0
    strict: bool = True
    size: int = 0

    def __getitem__(self, key: str) -> str:
        return self.fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def _get(self, key: str) -> str:
        return self.fields.get(key, "")

    @property
    def suspicious(self) -> bool:
        return self.ignored_lines > 0 or not self.strict

    @property
    def uniqueid(self) -> str:
        return self._get("agi_uniqueid")

    @property
    def channel(self) -> str:
        return self._get("agi_channel")

    @property
    def callerid(self) -> str:
        return self._get("agi_callerid")

    @property
    def calleridname(self) -> str:
        return self._get("agi_calleridname")

    @property
    def callingpres(self) -> int | None:
        return _to_int(self.fields.get("agi_callingpres"))

    @property
    def dnid(self) -> str:
        return self._get("agi_dnid")

    @property
    def rdnis(self) -> str:
        return self._get("agi_rdnis")

    @property
    def context(self) -> str:
        return self._get("agi_context")

    @property
    def extension(self) -> str:
        return self._get("agi_extension")

    @property
    def priority(self) -> int | None:
        return _to_int(self.fields.get("agi_priority"))

    @property
    def language(self) -> str:
        return self._get("agi_language")

    @property
    def request(self) -> str:
        return self._get("agi_request")

    @property
    def network_script(self) -> str:
        """Route name: the script path of the AGI URL without query string or slashes.

        ``agi://host:4573/incoming?x=1`` gives ``incoming``.  Taken from ``agi_network_script``,
        or from ``agi_request`` when Asterisk sent no script line.
        """
        script = self.fields.get("agi_network_script")
        if script is None:
            req = self._get("agi_request")
            _, sep, rest = req.partition("://")
            script = rest.partition("/")[2] if sep else ""
        return script.partition("?")[0].strip("/")

    @property
    def args(self) -> tuple[str, ...]:
        """``agi_arg_1`` … ``agi_arg_N`` in order (up to the first missing one)."""
        out: list[str] = []
        get = self.fields.get
        i = 1
        while (v := get(f"agi_arg_{i}")) is not None:
            out.append(v)
            i += 1
        return tuple(out)


def _to_int(v: str | None) -> int | None:
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        return None


def _split_line(line: str) -> tuple[str, str] | None:
    key, sep, value = line.partition(": ")
    if not sep:
        if line.startswith("agi_") and line.endswith(":") and " " not in line:
            key, value = line[:-1], ""
        else:
            return None
    elif not key.startswith("agi_") or " " in key or "\t" in key:
        return None
    if value.endswith("\r"):
        value = value[:-1]
    return key, value


_KEYS_NO_SCRIPT = tuple(k for k in ENV_KEYS if k != "agi_network_script")


#: Asterisk's exact layout (every real call): one regular expression reads the whole block;
#: values hold no CR or LF, so anything stray (an injected line, a CR) falls to the slow path.
_FAST_LAYOUTS = tuple(
    (re.compile("".join(f"{re.escape(k)}: ([^\\r\\n]*)\\n" for k in keys)), keys) for keys in (ENV_KEYS, _KEYS_NO_SCRIPT)
)
_ARG_LINE = re.compile(r"agi_arg_([1-9][0-9]*): ([^\r\n]*)\n")


def _build_environment(block: bytes) -> AgiEnvironment:
    """Read an environment block (without its closing empty line)."""
    text = block.decode("utf-8", "replace")
    for layout, keys in _FAST_LAYOUTS:
        m = layout.match(text)
        if m is None:
            continue
        fields = dict(zip(keys, m.groups()))
        pos, end, n = m.end(), len(text), 1
        while pos < end:
            a = _ARG_LINE.match(text, pos)
            if a is None or a.group(1) != str(n):
                break
            fields[f"agi_arg_{n}"] = a.group(2)
            pos, n = a.end(), n + 1
        else:
            return AgiEnvironment(MappingProxyType(fields), 0, True, len(block))
        break
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return _slow_environment(lines, len(block))


def _slow_environment(lines: list[str], size: int) -> AgiEnvironment:
    """Pick, among the lines, the chain of keys Asterisk really wrote.

    A chain starts at ``agi_network`` on the first line and follows Asterisk's fixed order.
    After a value that cannot hold caller data the next line must be the next key; after one
    that can (caller ID, name, DNID, RDNIS, URL, args) any lines may follow before the next key.
    When several occurrences of the next key would give a complete chain, the *last* one is
    Asterisk's: injected lines always sit inside a value, before the genuine rest of the block.
    If no chain exists the block is read leniently: first occurrence of each key wins.
    """
    n = len(lines)
    parsed = [_split_line(line) for line in lines]
    ranks = [(_rank(kv[0]) if kv is not None else -1) for kv in parsed]
    valid = [False] * n
    nxt = [n] * n
    latest: dict[int, int] = {}  # rank -> last line index starting a valid chain
    for j in range(n - 1, -1, -1):
        r = ranks[j]
        if r < 0:
            continue
        ok = False
        if _may_carry_data(r):
            best = latest.get(r + 1, -1)  # agi_network, the only key with two successors, is fixed
            if best >= 0:
                ok, nxt[j] = True, best
            elif r >= _R_THREADID:
                ok = True  # stray lines up to the end belong to the last argument
        elif j == n - 1:
            ok = r >= _R_THREADID
        elif valid[j + 1] and _follows(r, ranks[j + 1]):
            ok, nxt[j] = True, j + 1
        if ok:
            valid[j] = True
            latest.setdefault(r, j)
    fields: dict[str, str] = {}
    if n and ranks[0] == _R_NETWORK and valid[0]:
        j = 0
        while j < n:
            kv = parsed[j]
            assert kv is not None
            fields[kv[0]] = kv[1]
            j = nxt[j]
        return AgiEnvironment(MappingProxyType(fields), n - len(fields), True, size)
    for kv in parsed:
        if kv is not None and kv[0] not in fields:
            fields[kv[0]] = kv[1]
    return AgiEnvironment(MappingProxyType(fields), n - len(fields), False, size)


class EnvironmentParser:
    """Incremental reader of the environment block: feed bytes until it returns the environment.

    The block ends at the first truly empty line (``\\n\\n``).  A line holding only ``\\r`` (a
    hostile caller name's ``\\r\\n\\r\\n``) does not end it.  Bytes after the block are kept in
    :attr:`rest`.  Raises :class:`EnvironmentTooLarge` once ``max_bytes`` pass without an end.
    """

    __slots__ = ("_buf", "_scan", "max_bytes", "rest", "environment")

    def __init__(self, max_bytes: int = DEFAULT_MAX_ENV_BYTES) -> None:
        self._buf = b""
        self._scan = 0
        self.max_bytes = max_bytes
        self.rest = b""
        self.environment: AgiEnvironment | None = None

    @property
    def buffered(self) -> int:
        """Bytes received so far of an unfinished block."""
        return len(self._buf)

    def feed(self, data: bytes) -> AgiEnvironment | None:
        if self.environment is not None:
            self.rest += data
            return self.environment
        buf = self._buf + data if self._buf else data
        if buf[:1] == b"\n":
            end = 0
        else:
            end = buf.find(b"\n\n", self._scan)
            if end >= 0:
                end += 1
        if end < 0:
            if len(buf) >= self.max_bytes:
                raise EnvironmentTooLarge(f"environment exceeds {self.max_bytes} bytes")
            self._buf = buf
            self._scan = max(len(buf) - 1, 0)
            return None
        if end + 1 > self.max_bytes:
            raise EnvironmentTooLarge(f"environment exceeds {self.max_bytes} bytes")
        self._buf = b""
        self.rest = buf[end + 1 :]
        self.environment = _build_environment(buf[:end])
        return self.environment


def parse_environment(data: bytes, max_bytes: int = DEFAULT_MAX_ENV_BYTES) -> tuple[AgiEnvironment | None, bytes]:
    """Parse a whole environment from ``data``: ``(environment, rest)``, or ``(None, data)`` if
    the closing empty line has not arrived.  Raises :class:`EnvironmentTooLarge`."""
    p = EnvironmentParser(max_bytes)
    env = p.feed(data)
    if env is None:
        return None, data
    return env, p.rest


# --------------------------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgiReply:
    """One reply to one command: ``200 result=1 (value) endpos=N``, ``510 …``, ``520-…``."""

    code: int
    result: int | None = None
    data: str | None = None
    endpos: int | None = None
    text: str = ""

    @property
    def ok(self) -> bool:
        """200 with a non-negative result (Asterisk counts ``result=-1`` as a failure)."""
        return self.code == 200 and (self.result is None or self.result >= 0)


@dataclass(frozen=True, slots=True)
class AgiHangup:
    """Asterisk's unprompted ``HANGUP`` line: the caller hung up; no reply to any command."""


@dataclass(frozen=True, slots=True)
class AgiUnexpectedLine:
    """A line that is neither a reply nor ``HANGUP`` (garbage, or a stray environment line)."""

    line: str


AgiEvent = Union[AgiReply, AgiHangup, AgiUnexpectedLine]

_HANGUP = AgiHangup()
_OK_1 = AgiReply(200, 1, None, None, "200 result=1")
_OK_0 = AgiReply(200, 0, None, None, "200 result=0")


def _parse_reply_line(text: str, code: int) -> AgiReply:
    body = text[4:]
    if not body.startswith("result="):
        return AgiReply(code, None, None, None, text)
    num, _, tail = body[7:].partition(" ")
    try:
        result: int | None = int(num)
    except ValueError:
        result = None
    data = None
    endpos = None
    if tail.startswith("("):
        close = tail.rfind(")")
        if close > 0:
            data = tail[1:close]
            tail = tail[close + 1 :].lstrip(" ")
        else:
            data, tail = tail[1:], ""
    # attributes after the data, in any order: ``endpos=N``, ``digit=5 endpos=N``, ``endpos=N results=…``
    for word in tail.split(" "):
        if word.startswith("endpos="):
            try:
                endpos = int(word[7:])
            except ValueError:
                endpos = None
            break
    return AgiReply(code, result, data, endpos, text)


class AgiReplyParser:
    """Incremental reader of what Asterisk writes after the environment.

    ``feed(bytes)`` returns the complete events: :class:`AgiReply` (a multi-line ``NNN-``
    reply up to its ``NNN `` line is one reply), :class:`AgiHangup`, :class:`AgiUnexpectedLine`.
    """

    __slots__ = ("_buf", "_multi", "_multi_code", "max_line")

    def __init__(self, max_line: int = 65536) -> None:
        self._buf = b""
        self._multi: list[str] | None = None
        self._multi_code = ""
        self.max_line = max_line

    def idle(self) -> bool:
        """True between lines (no partial line, no multi-line reply open)."""
        return not self._buf and self._multi is None

    def feed(self, data: bytes) -> list[AgiEvent]:
        if data == b"200 result=1\n" and not self._buf and self._multi is None:
            return [_OK_1]  # the reply to every SET VARIABLE
        buf = self._buf + data if self._buf else data
        events: list[AgiEvent] = []
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            self._line(buf[start:nl].decode("utf-8", "replace"), events)
            start = nl + 1
        self._buf = buf[start:] if start < len(buf) else b""
        if len(self._buf) > self.max_line:
            raise AgiProtocolError("reply line too long")
        return events

    def _line(self, text: str, events: list[AgiEvent]) -> None:
        multi = self._multi
        if multi is not None:
            if len(multi) >= 1000:
                raise AgiProtocolError("multi-line reply too long")
            multi.append(text)
            if text.startswith(self._multi_code) and text[3:4] == " ":
                events.append(AgiReply(int(self._multi_code), None, None, None, "\n".join(multi)))
                self._multi = None
            return
        if text == "200 result=1":
            events.append(_OK_1)
            return
        if text == "200 result=0":
            events.append(_OK_0)
            return
        if text == "HANGUP":
            events.append(_HANGUP)
            return
        head = text[:3]
        sep = text[3:4]
        if len(head) == 3 and head.isdigit() and head.isascii() and sep in (" ", "-", ""):
            if sep == "-":
                self._multi = [text]
                self._multi_code = head
                return
            events.append(_parse_reply_line(text, int(head)))
            return
        events.append(AgiUnexpectedLine(text))


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------

_NAME_OK: dict[str, bool] = {}
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_()]*\Z")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_LINE_BREAKERS = str.maketrans({"\x00": " ", "\n": " ", "\r": " "})
_SAFE_WORD_RE = re.compile(r"[A-Za-z0-9_().,:/@+=*#%-]+\Z")


def is_valid_variable_name(name: str) -> bool:
    """``[A-Za-z_][A-Za-z0-9_()]*``, at most 80 characters."""
    ok = _NAME_OK.get(name)
    if ok is None:
        ok = len(name) <= MAX_VARIABLE_NAME and _NAME_RE.match(name) is not None
        if len(_NAME_OK) < 4096:
            _NAME_OK[name] = ok
    return ok


def sanitize_value(value: str, max_bytes: int = MAX_VALUE_BYTES) -> str:
    """The text Asterisk will hold once ``value`` went through :func:`quote_arg`.

    NUL, LF and CR cannot travel inside an AGI command (the line would end or be cut), so each
    becomes a space; lone surrogates (e.g. undecodable bytes kept by ``surrogateescape``) become
    U+FFFD; the value is cut to the longest prefix whose escaped UTF-8 form fits ``max_bytes``.
    """
    if value.isascii() and value.isprintable():
        if len(value) + value.count("\\") + value.count('"') <= max_bytes:
            return value
    else:
        value = value.translate(_LINE_BREAKERS)
        if not value.isascii():
            value = _SURROGATE_RE.sub("\ufffd", value)
    cost = len(value.encode("utf-8")) + value.count("\\") + value.count('"')
    if cost <= max_bytes:
        return value
    value = value[:max_bytes]
    total = 0
    for i, ch in enumerate(value):
        o = ord(ch)
        total += (1 if o < 0x80 else 2 if o < 0x800 else 3 if o < 0x10000 else 4) + (ch == "\\" or ch == '"')
        if total > max_bytes:
            return value[:i]
    return value


def quote_arg(value: str, max_bytes: int = MAX_VALUE_BYTES) -> bytes:
    """``value`` as one double-quoted AGI argument that no input can end early or split."""
    v = sanitize_value(value, max_bytes)
    if "\\" in v or '"' in v:
        v = v.replace("\\", "\\\\").replace('"', '\\"')
    return b'"' + v.encode("utf-8") + b'"'


def set_variable(name: str, value: str, max_bytes: int = MAX_VALUE_BYTES) -> bytes:
    """``SET VARIABLE NAME "value"\\n``.  Raises ValueError for a name outside
    ``[A-Za-z_][A-Za-z0-9_()]*``."""
    if not is_valid_variable_name(name):
        raise ValueError(f"invalid channel variable name: {name[:40]!r}")
    return b"SET VARIABLE " + name.encode("ascii") + b" " + quote_arg(value, max_bytes) + b"\n"


def verbose(message: str, level: int = 1) -> bytes:
    """``VERBOSE "message" level\\n``."""
    return b"VERBOSE " + quote_arg(message) + b" " + str(int(level)).encode("ascii") + b"\n"


def command(*words: str) -> bytes:
    """A generic command line: plain words stay as they are, any other word is quoted."""
    if not words:
        raise ValueError("empty command")
    out = []
    for w in words:
        w = str(w)
        out.append(w.encode("ascii") if _SAFE_WORD_RE.match(w) else quote_arg(w))
    return b" ".join(out) + b"\n"


def parse_command_args(line: bytes, max_args: int = 128) -> list[bytes]:
    """Split one command line into arguments exactly as Asterisk's ``parse_args`` does.

    Double quotes group (and toggle anywhere in a word), a backslash makes the next quote,
    space, tab or backslash literal and is dropped before any other character; unquoted spaces
    and tabs separate words.  ``line`` is the command without its ``\\n`` (a NUL ends it).
    """
    nul = line.find(b"\0")
    if nul >= 0:
        line = line[:nul]
    out = bytearray()
    starts: list[int] = []
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == 0x22 and not escaped:  # '"'
            quoted = not quoted
            if quoted and whitespace:
                starts.append(len(out))
                whitespace = False
            escaped = False
            continue
        if (ch == 0x20 or ch == 0x09) and not quoted and not escaped:
            whitespace = True
            out.append(0)
            continue
        if ch == 0x5C and not escaped:  # '\\'
            escaped = True
            continue
        if whitespace:
            if len(starts) >= max_args - 1:
                continue  # "Too many arguments, truncating"
            starts.append(len(out))
            whitespace = False
        out.append(ch)
        escaped = False
    out.append(0)
    return [bytes(out[s : out.index(0, s)]) for s in starts]
