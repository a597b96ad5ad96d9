"""Reader of the ``.log`` capture format of ``shared/asterisk-captures`` (see its README).

A log is ``#@ begin …`` then records ``#@ seq=<n> t=<s> dir=<from>><to> len=<N>\\n`` + N bytes +
``\\n``, then ``#@ end …``.  Each record is one real ``recv()``/``send()`` chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Record:
    seq: int
    t: float
    direction: str  # "asterisk>agi", "agi>asterisk", "asterisk>cti", "cti>asterisk"
    data: bytes


def read_log(path: Path | str) -> list[Record]:
    """All records of a capture log, in order."""
    raw = Path(path).read_bytes()
    pos = 0
    out: list[Record] = []
    while pos < len(raw):
        nl = raw.index(b"\n", pos)
        header = raw[pos:nl].decode("ascii")
        pos = nl + 1
        if not header.startswith("#@ seq="):
            if header.startswith("#@ "):
                continue  # begin / end lines
            raise ValueError(f"{path}: unexpected line {header!r} at byte {pos}")
        fields = dict(part.split("=", 1) for part in header[3:].split())
        n = int(fields["len"])
        data = raw[pos : pos + n]
        if len(data) != n or raw[pos + n : pos + n + 1] != b"\n":
            raise ValueError(f"{path}: record seq={fields['seq']} is truncated")
        pos += n + 1
        out.append(Record(int(fields["seq"]), float(fields["t"]), fields["dir"], data))
    return out


def stream(path: Path | str, direction: str) -> bytes:
    """The bytes of one direction, concatenated."""
    return b"".join(r.data for r in read_log(path) if r.direction == direction)
