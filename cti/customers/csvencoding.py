"""The text encoding of a customer CSV: UTF-8 (with or without BOM) or, as Excel saves it on Chinese
Windows, GBK/GB18030; and where a file stops being decodable, by line, with the fix to suggest."""

from __future__ import annotations

import codecs
from pathlib import Path

SAMPLE_BYTES = 1 << 20
#: Encodings a user may name with ``--encoding`` (besides any Python codec name).
GB = "gb18030"


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` when the first MiB decodes as UTF-8, else ``gb18030`` when it decodes as that."""
    with path.open("rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    for encoding in ("utf-8-sig", GB):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            decoder.decode(sample, final=False)  # a character cut at the sample's end is fine
        except UnicodeDecodeError:
            continue
        return encoding
    return "utf-8-sig"


def undecodable_line(path: Path, encoding: str) -> int | None:
    """The 1-based line of the first byte that does not decode as ``encoding`` (None: it all does)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    with path.open("rb") as fh:
        while True:
            block = fh.read(1 << 16)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                return line + block[:exc.start].count(b"\n")
            if not block:
                return None
            line += block.count(b"\n")


def how_to_fix(encoding: str) -> str:
    if encoding.replace("-", "").lower() in ("utf8sig", "utf8"):
        return "save the file as UTF-8 (Excel: 'CSV UTF-8'), or pass --encoding gb18030 if it is a GBK file"
    return "save the file as UTF-8 (Excel: 'CSV UTF-8'), or pass the file's real --encoding"
