"""Sans-IO AMI parser: bytes in, frozen :class:`AmiMessage` out.

No socket, no loop, no clock. What the real Asterisk 22 sends (see the captures):

* a banner line ``Asterisk Call Manager/11.0.0\\r\\n`` with *no* blank line after it;
* messages of ``Key: Value\\r\\n`` lines ended by an empty line (``\\r\\n\\r\\n``);
* ``OriginateResponse`` is an event that also carries ``Response:``: a message is an
  event when it has an ``Event:`` header, whatever else it holds;
* ``Newexten.AppData`` / ``VarSet.Value`` carry raw caller data, CR/LF included, so a
  caller can add headers to those messages and start bogus frames. The first occurrence
  of a header wins, a frame with neither ``Event:`` nor ``Response:`` is dropped (and
  counted), and a line that is not ``Key: Value`` is skipped (and counted).

Hot path: frames are cut and decoded in bulk; the header split is lazy (done once, on
first access), so the many events cti ignores (``VarSet``, ``Newexten``, ``Cdr`` ...) cost
one ``find`` for their name and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator, Literal

Kind = Literal["event", "response", "banner"]

BANNER_PREFIX = b"Asterisk Call Manager/"
_END = b"\r\n\r\n"
#: A frame larger than this without a terminator is garbage (or an attack): dropped.
MAX_FRAME_BYTES = 1 << 20


@dataclass(frozen=True, eq=False)
class AmiMessage:
    """One AMI message. ``raw`` is the decoded frame (CRLF separated, no terminator)."""

    kind: Kind
    name: str
    raw: str = field(repr=False)

    @cached_property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """Every ``(key, value)`` pair in wire order (repeated keys kept, e.g. ``Output``)."""
        pairs = []
        for line in self.raw.split("\r\n"):
            k, sep, v = line.partition(": ")
            if not sep:
                k, sep, v = line.partition(":")
                if not sep or not k or " " in k:
                    continue
            pairs.append((k, v))
        return tuple(pairs)

    @cached_property
    def fields(self) -> dict[str, str]:
        """First occurrence of each header (a forged repeat never overrides the real one)."""
        d: dict[str, str] = {}
        for k, v in self.headers:
            if k not in d:
                d[k] = v
        return d

    @cached_property
    def malformed_lines(self) -> int:
        """Lines of this frame that are not ``Key: Value`` (skipped)."""
        if self.kind == "banner":
            return 0
        return self.raw.count("\r\n") + 1 - len(self.headers)

    @property
    def action_id(self) -> str | None:
        return self.fields.get("ActionID")

    def get(self, key: str, default: str = "") -> str:
        return self.fields.get(key, default)

    def getall(self, key: str) -> list[str]:
        """All values of a repeated header, in order (``Output`` lines of a Command reply)."""
        return [v for k, v in self.headers if k == key]

    @property
    def privilege(self) -> str:
        return self.fields.get("Privilege", "")

    @property
    def is_dialplan_class(self) -> bool:
        """Events of the ``dialplan`` class carry raw caller data and are never trusted."""
        return self.privilege.startswith("dialplan")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AmiMessage):
            return NotImplemented
        return (self.kind, self.name, self.raw) == (other.kind, other.name, other.raw)

    def __hash__(self) -> int:
        return hash((self.kind, self.name, self.raw))


@dataclass
class ParserStats:
    messages: int = 0
    #: frames with neither ``Event:`` nor ``Response:`` (forged tails, garbage)
    unclassified: int = 0
    #: bytes thrown away: oversized frames, a frame cut by a disconnect
    discarded_bytes: int = 0


class AmiParser:
    """Incremental AMI parser. ``feed(data)`` returns the messages completed by ``data``."""

    __slots__ = ("_buf", "_banner_pending", "stats", "max_frame")

    def __init__(self, max_frame: int = MAX_FRAME_BYTES) -> None:
        self._buf = b""
        self._banner_pending = True
        self.stats = ParserStats()
        self.max_frame = max_frame

    def reset(self) -> None:
        """Start over for a new connection: a partial frame of the old one is discarded."""
        self.stats.discarded_bytes += len(self._buf)
        self._buf = b""
        self._banner_pending = True

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[AmiMessage]:
        buf = self._buf + data if self._buf else data
        out: list[AmiMessage] = []
        if self._banner_pending:
            buf = self._take_banner(buf, out)
            if self._banner_pending:
                self._buf = buf
                return out
        end = buf.rfind(_END)
        if end < 0:
            if len(buf) > self.max_frame:
                self.stats.discarded_bytes += len(buf)
                buf = b""
            self._buf = buf
            return out
        self._buf = buf[end + 4 :]
        if len(self._buf) > self.max_frame:
            self.stats.discarded_bytes += len(self._buf)
            self._buf = b""
        text = buf[:end].decode("utf-8", "replace")
        stats = self.stats
        before = len(out)
        append = out.append
        for frame in text.split("\r\n\r\n"):
            if frame.startswith("Event: "):
                nl = frame.find("\r\n")
                append(AmiMessage("event", frame[7:nl] if nl >= 0 else frame[7:], frame))
                continue
            if not frame:
                continue
            frame = frame.lstrip("\r\n")
            msg = _classify(frame)
            if msg is None:
                if frame:
                    stats.unclassified += 1
                continue
            append(msg)
        stats.messages += len(out) - before
        return out

    def _take_banner(self, buf: bytes, out: list[AmiMessage]) -> bytes:
        n = min(len(buf), len(BANNER_PREFIX))
        if buf[:n] != BANNER_PREFIX[:n]:
            self._banner_pending = False  # no banner: a peer that starts with messages
            return buf
        nl = buf.find(b"\r\n")
        if nl < 0:
            if len(buf) > 512:
                self._banner_pending = False
            return buf
        line = buf[:nl].decode("utf-8", "replace")
        out.append(AmiMessage("banner", line[len(BANNER_PREFIX) :], line))
        self.stats.messages += 1
        self._banner_pending = False
        return buf[nl + 2 :]


def _classify(frame: str) -> AmiMessage | None:
    """Slow path: a frame that does not start with ``Event:``."""
    if frame.startswith("Event: "):
        nl = frame.find("\r\n")
        return AmiMessage("event", frame[7:nl] if nl >= 0 else frame[7:], frame)
    i = frame.find("\r\nEvent: ")
    if i >= 0:
        j = frame.find("\r\n", i + 9)
        return AmiMessage("event", frame[i + 9 : j] if j >= 0 else frame[i + 9 :], frame)
    if frame.startswith("Response: "):
        nl = frame.find("\r\n")
        return AmiMessage("response", frame[10:nl] if nl >= 0 else frame[10:], frame)
    i = frame.find("\r\nResponse: ")
    if i >= 0:
        j = frame.find("\r\n", i + 12)
        return AmiMessage("response", frame[i + 12 : j] if j >= 0 else frame[i + 12 :], frame)
    return None


def iter_messages(data: bytes, chunk: int = 0) -> Iterator[AmiMessage]:
    """Parse a whole byte string (optionally fed in ``chunk``-sized reads)."""
    p = AmiParser()
    if chunk <= 0:
        yield from p.feed(data)
        return
    for i in range(0, len(data), chunk):
        yield from p.feed(data[i : i + chunk])


def encode_action(action: str, headers: dict[str, object] | list[tuple[str, object]]) -> bytes:
    """Serialize an action. CR/LF in values are removed: a value can never add a header."""
    items = headers.items() if isinstance(headers, dict) else headers
    lines = [f"Action: {_clean(action)}"]
    for k, v in items:
        if v is None:
            continue
        if isinstance(v, (list, tuple)):
            lines.extend(f"{_clean(k)}: {_clean(x)}" for x in v)
        else:
            lines.append(f"{_clean(k)}: {_clean(v)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _clean(v: object) -> str:
    s = "true" if v is True else "false" if v is False else str(v)
    return s.replace("\r", " ").replace("\n", " ")
