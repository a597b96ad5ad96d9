"""Hard links in bulk: ``python -m cti.greeting.linker [--dir DIR] [FILE]``.

Reads lines ``SOURCE<TAB>TARGET`` (paths relative to ``--dir``, default the current directory; no
absolute paths, no ``..``; TARGET a bare file name) from FILE or standard input and makes each TARGET
a hard link to SOURCE. A TARGET that already exists counts as done (customer sound names embed the
content hash, so an existing name already says the right thing). Where the source reached the file
system's link limit, the target gets a copy that becomes the new cache entry.

Output, one line each, on standard output:
- ``fail <line number> <reason>`` for a line that could not be done (bad line, missing source, ...);
- ``done <lines read so far>`` for every empty input line (a flush marker: every line before it is finished);
- ``end <linked> <existing> <failed>`` at the end of the input.
Exit status 0 when every line was done, 1 when some failed, 2 for a usage error.

Standard library only, so the child starts fast; :mod:`cti.greeting.links` drives it (or runs
:func:`link_lines` in a thread when the child cannot start).
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import uuid
from dataclasses import dataclass, field
from typing import BinaryIO, Iterable, TextIO


class BadLine(ValueError):
    """An input line that is not ``SOURCE<TAB>TARGET`` with safe relative paths."""


@dataclass
class Tally:
    """What a run did; ``failures`` holds (line number, reason) of the lines that failed."""

    linked: int = 0
    existing: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)


def parse_line(line: bytes) -> tuple[bytes, bytes]:
    """(source, target) of one input line (without its newline); BadLine when it is malformed or unsafe."""
    parts = line.split(b"\t")
    if len(parts) != 2:
        raise BadLine(f"expected SOURCE<TAB>TARGET, got {len(parts)} field(s)")
    source, target = parts
    if not source or not target:
        raise BadLine("empty path")
    if b"\0" in line:
        raise BadLine("NUL in path")
    if source.startswith(b"/") or b".." in source.split(b"/"):
        raise BadLine("source must be a relative path without '..'")
    if b"/" in target or target in (b".", b".."):
        raise BadLine("target must be a bare file name")
    return source, target


def link_one(source: bytes, target: bytes, dir_fd: int | None = None) -> bool:
    """Make ``target`` a hard link to ``source``; True if made now, False if ``target`` already existed.

    OSError (missing source, ...) propagates; EMLINK (the source's link limit) falls back to a copy.
    """
    try:
        os.link(source, target, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno != errno.EMLINK:
            raise
    return _copy_and_repoint(source, target, dir_fd)


def _copy_and_repoint(source: bytes, target: bytes, dir_fd: int | None) -> bool:
    """``target`` becomes a fresh copy of ``source``, and the copy the new ``source`` (its links are free)."""
    tmp = b".tmp-" + uuid.uuid4().hex.encode() + b".wav"
    try:
        src_fd = os.open(source, os.O_RDONLY, dir_fd=dir_fd)
        try:
            out_fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dir_fd)
            with os.fdopen(src_fd, "rb", closefd=False) as src, os.fdopen(out_fd, "wb") as out:
                shutil.copyfileobj(src, out)
        finally:
            os.close(src_fd)
        try:
            os.link(tmp, target, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            made = True
        except FileExistsError:
            made = False
        os.replace(tmp, source, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return made
    finally:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass


def _reason(exc: BaseException) -> str:
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        text = f"{errno.errorcode.get(exc.errno, exc.errno)}: {text}"
    return " ".join(text.split())[:200]


def link_lines(lines: Iterable[bytes], dir_fd: int | None = None, first_line: int = 1) -> Tally:
    """Link every ``SOURCE<TAB>TARGET`` line (newline optional; empty lines skipped); failures are tallied."""
    tally = Tally()
    for number, raw in enumerate(lines, first_line):
        line = raw.rstrip(b"\r\n")
        if not line:
            continue
        try:
            if link_one(*parse_line(line), dir_fd):
                tally.linked += 1
            else:
                tally.existing += 1
        except (BadLine, OSError) as exc:
            tally.failures.append((number, _reason(exc)))
    return tally


def serve(inp: BinaryIO, out: TextIO, dir_fd: int | None) -> Tally:
    """The child's protocol loop (see the module docstring)."""
    tally = Tally()
    number = 0
    link = os.link
    for raw in inp:
        number += 1
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if not line or line == b"\r":
            out.write(f"done {number}\n")
            out.flush()
            continue
        source, tab, target = line.partition(b"\t")
        try:
            if not tab or not source or not target or b"\t" in target or b"/" in target or b"\r" in target \
                    or source[0] == 47 or b".." in source or target in (b".", b"..") or b"\0" in line:
                source, target = parse_line(line.rstrip(b"\r"))  # the unusual line: exact checks and reason
            try:
                link(source, target, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                tally.linked += 1
            except FileExistsError:
                tally.existing += 1
            except OSError:  # the unusual case (link limit, missing source): again the careful way
                if link_one(source, target, dir_fd):
                    tally.linked += 1
                else:
                    tally.existing += 1
        except (BadLine, OSError) as exc:
            tally.failures.append((number, _reason(exc)))
            out.write(f"fail {number} {_reason(exc)}\n")
    out.write(f"end {tally.linked} {tally.existing} {len(tally.failures)}\n")
    out.flush()
    return tally


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    directory = "."
    if args[:1] == ["--dir"] and len(args) >= 2:
        directory, args = args[1], args[2:]
    if len(args) > 1 or (args and args[0].startswith("-")):
        print("usage: python -m cti.greeting.linker [--dir DIR] [FILE]", file=sys.stderr)
        return 2
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        print(f"cannot open directory {directory!r}: {_reason(exc)}", file=sys.stderr)
        return 2
    try:
        if args:
            try:
                with open(args[0], "rb") as fh:
                    tally = serve(fh, sys.stdout, dir_fd)
            except OSError as exc:
                print(f"cannot read {args[0]!r}: {_reason(exc)}", file=sys.stderr)
                return 2
        else:
            tally = serve(sys.stdin.buffer, sys.stdout, dir_fd)
    finally:
        os.close(dir_fd)
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
