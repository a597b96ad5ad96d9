"""Reader for the byte-exact capture format of ``asterisk-captures/*.log``.

``#@ seq=<n> t=<s> dir=<from>><to> len=<N>\\n`` + N payload bytes + ``\\n``, between a
``#@ begin ... start=<iso>`` line and a ``#@ end ...`` line. Used by replay tests, the
benchmark and the simulated PBX; it never touches a network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

_HEAD = re.compile(rb"#@ seq=(\d+) t=([0-9.]+) dir=(\S+?)>(\S+) len=(\d+)\n")


@dataclass(frozen=True)
class Chunk:
    seq: int
    t: float
    src: str
    dst: str
    data: bytes


@dataclass(frozen=True)
class Capture:
    start: float
    chunks: tuple[Chunk, ...]
    end_reason: str

    def received(self, src: str = "asterisk") -> list[Chunk]:
        return [c for c in self.chunks if c.src == src]


def read_capture(path: str | Path) -> Capture:
    raw = Path(path).read_bytes()
    nl = raw.index(b"\n")
    begin = raw[:nl].decode()
    m = re.search(r"start=(\S+)", begin)
    start = datetime.fromisoformat(m.group(1)).timestamp() if m else 0.0
    pos = nl + 1
    chunks = []
    reason = ""
    while pos < len(raw):
        if raw.startswith(b"#@ end", pos):
            line_end = raw.find(b"\n", pos)
            line = raw[pos: line_end if line_end >= 0 else len(raw)].decode()
            m2 = re.search(r"reason=(\S+)", line)
            reason = m2.group(1) if m2 else ""
            break
        h = _HEAD.match(raw, pos)
        if h is None:
            raise ValueError(f"{path}: bad record header at byte {pos}")
        n = int(h.group(5))
        body = raw[h.end(): h.end() + n]
        chunks.append(Chunk(int(h.group(1)), float(h.group(2)), h.group(3).decode(), h.group(4).decode(), body))
        pos = h.end() + n + 1
    return Capture(start, tuple(chunks), reason)
