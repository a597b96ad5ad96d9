"""Asterisk's ini-like configuration format, read the way Asterisk reads it.

pyst2's ``asterisk.config`` (a project dependency) cannot read cti's files: it rejects
template sections (``[name](!)``, ``[name](template)``) and ``#include`` lines. This
reader follows ``#include`` (a relative path is looked up in the configuration
directory, i.e. ``astetcdir``, not next to the including file), expands templates the way
Asterisk does (the template's lines first, then the section's own), strips ``;``
comments (``\\;`` is a literal semicolon) and keeps ``=`` / ``=>`` items in order, each
with the file and line it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence


class ConfSyntaxError(ValueError):
    """A line Asterisk would not accept; ``file``/``line`` say where."""

    def __init__(self, file: Path, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file, self.line, self.message = file, line, message


class IncludeNotFound(FileNotFoundError):
    """An ``#include`` names a file that is in none of the include roots."""

    def __init__(self, file: Path, line: int, target: str, roots: Sequence[Path]) -> None:
        where = ", ".join(str(r) for r in roots)
        super().__init__(f"{file}:{line}: #include {target}: not found in {where}")
        self.file, self.line, self.target = file, line, target


@dataclass(frozen=True)
class Item:
    key: str
    value: str
    file: Path
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Section:
    name: str
    is_template: bool = False
    templates: tuple[str, ...] = ()
    file: Path | None = None
    line: int = 0
    #: (key, value, file, line) in the order Asterisk sees them (template lines first).
    entries: list[Item] = field(default_factory=list)

    @property
    def items(self) -> list[tuple[str, str, str, str]]:
        """The entries as ``(key, value, file name, line)`` tuples."""
        return [(i.key, i.value, i.file.name, str(i.line)) for i in self.entries]

    def get(self, key: str) -> str | None:
        """Last value of ``key`` (what most modules use), None if absent."""
        values = self.values(key)
        return values[-1] if values else None

    def first(self, key: str) -> str | None:
        values = self.values(key)
        return values[0] if values else None

    def values(self, key: str) -> list[str]:
        return [i.value for i in self.entries if i.key == key]

    def item(self, key: str) -> Item | None:
        """The last entry for ``key`` (with its file and line)."""
        found = [i for i in self.entries if i.key == key]
        return found[-1] if found else None


def strip_comment(line: str) -> str:
    out, i = [], 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line) and line[i + 1] == ";":
            out.append(";")
            i += 2
            continue
        if line[i] == ";":
            break
        out.append(line[i])
        i += 1
    return "".join(out).strip()


_SECTION = re.compile(r"^\[([^\]]+)\](?:\(([^)]*)\))?$")
_ITEM = re.compile(r"^([^=]*?)\s*(=>|=)\s*(.*)$")


def resolve_include(name: str, roots: Sequence[Path]) -> Path | None:
    """An ``#include`` path as Asterisk resolves it: absolute, or under the configuration directory."""
    if name.startswith("/"):
        p = Path(name)
        return p if p.is_file() else None
    for base in roots:
        if (base / name).is_file():
            return base / name
    return None


def read_conf(path: Path, roots: Sequence[Path] | None = None) -> list[Section]:
    """Sections of an Asterisk config file, includes followed, templates expanded.

    ``roots``: where relative ``#include`` paths are looked up, in order (default: the
    file's directory, then its parent, which fits both ``/etc/asterisk`` and this
    repository's ``asterisk-config/`` + ``dialplans/`` layout).
    """
    path = Path(path)
    if roots is None:
        roots = (path.parent, path.parent.parent)
    sections: list[Section] = []
    templates: dict[str, Section] = {}

    def parse(file: Path, depth: int) -> None:
        if depth > 20:
            raise ConfSyntaxError(file, 1, "#include nested too deep (a loop?)")
        for number, raw in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            stripped = raw.strip()
            if stripped.startswith("#include") or stripped.startswith("#tryinclude"):
                directive = "#include" if stripped.startswith("#include") else "#tryinclude"
                target = strip_comment(stripped[len(directive):]).strip().strip('"<>')
                found = resolve_include(target, roots)
                if found is None:
                    if directive == "#tryinclude":
                        continue
                    raise IncludeNotFound(file, number, target, roots)
                parse(found, depth + 1)
                continue
            line = strip_comment(raw)
            if not line:
                continue
            head = _SECTION.match(line)
            if head:
                name = head.group(1)
                options = [o.strip() for o in (head.group(2) or "").split(",") if o.strip()]
                section = Section(name, is_template="!" in options, file=file, line=number)
                section.templates = tuple(o for o in options if o not in ("!", "+"))
                for tpl in section.templates:
                    if tpl not in templates:
                        raise ConfSyntaxError(file, number, f"template {tpl!r} is not defined before [{name}]")
                    # Asterisk copies the template's lines first, then the section's own.
                    section.entries.extend(templates[tpl].entries)
                if section.is_template:
                    templates[name] = section
                sections.append(section)
                continue
            if not sections:
                raise ConfSyntaxError(file, number, f"item outside any section: {line!r}")
            item = _ITEM.match(line)
            if not item:
                raise ConfSyntaxError(file, number, f"not a 'key = value' line: {line!r}")
            sections[-1].entries.append(Item(item.group(1).strip(), item.group(3).strip(), file, number))

    parse(path, 0)
    return sections


def sections_named(sections: list[Section]) -> dict[str, list[Section]]:
    out: dict[str, list[Section]] = {}
    for s in sections:
        out.setdefault(s.name, []).append(s)
    return out
