"""The dialplan as data: contexts, extensions and their steps, with file and line.

Built from :mod:`cti.dialplan.conf` sections (``extensions.conf`` with its includes). Only
what cti's checks need: ``exten``/``same`` steps with labels, ``include`` lines, globals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from cti.dialplan.conf import ConfSyntaxError, Section, read_conf


@dataclass
class Step:
    app: str
    data: str
    label: str | None
    where: str
    file: Path | None = None
    line: int = 0


@dataclass
class Extension:
    name: str
    steps: list[Step] = field(default_factory=list)
    file: Path | None = None
    line: int = 0

    def label_index(self, label: str) -> int | None:
        if label.isdigit():
            n = int(label)
            return n - 1 if 1 <= n <= len(self.steps) else None
        for i, step in enumerate(self.steps):
            if step.label == label:
                return i
        return None


@dataclass
class Dialplan:
    globals: dict[str, str]
    contexts: dict[str, dict[str, Extension]]
    includes: dict[str, list[str]]
    #: where each context's first section header is (file, line)
    context_where: dict[str, tuple[Path, int]] = field(default_factory=dict)
    #: (context, included name, file, line) for every include line
    include_lines: list[tuple[str, str, Path, int]] = field(default_factory=list)
    globals_where: dict[str, tuple[Path, int]] = field(default_factory=dict)

    def find(self, context: str, exten: str, seen: frozenset[str] = frozenset()) -> Extension | None:
        """The extension of ``context`` (or of a context it includes) that ``exten`` dials."""
        if context in seen or context not in self.contexts:
            return None
        extens = self.contexts[context]
        if exten in extens:
            return extens[exten]
        for name, ext in extens.items():
            if name.startswith("_") and pattern_matches(name, exten):
                return ext
        for inc in self.includes.get(context, []):
            found = self.find(inc, exten, seen | {context})
            if found:
                return found
        return None

    def steps(self):
        """Every (context, extension, step)."""
        for ctx, extens in self.contexts.items():
            for ext in extens.values():
                for step in ext.steps:
                    yield ctx, ext, step


def split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses, brackets and braces."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def app_call(text: str) -> tuple[str, str]:
    """``App(data)`` -> ("App", "data")."""
    m = re.match(r"^\s*([A-Za-z0-9_]+)\s*(?:\((.*)\))?\s*$", text, re.S)
    if not m:
        raise ValueError(f"not an application call: {text!r}")
    return m.group(1), m.group(2) or ""


_SKIPPED_KEYS = ("switch", "ignorepat", "lswitch", "eswitch")


def build_dialplan(sections: list[Section]) -> Dialplan:
    """The dialplan of ``extensions.conf``'s sections; a malformed line raises ConfSyntaxError."""
    globals_: dict[str, str] = {}
    globals_where: dict[str, tuple[Path, int]] = {}
    contexts: dict[str, dict[str, Extension]] = {}
    includes: dict[str, list[str]] = {}
    plan = Dialplan(globals_, contexts, includes, globals_where=globals_where)
    for section in sections:
        if section.name == "globals":
            for i in section.entries:
                globals_[i.key] = i.value
                globals_where[i.key] = (i.file, i.line)
            continue
        if section.name == "general":
            continue
        ctx = contexts.setdefault(section.name, {})
        if section.file is not None:
            plan.context_where.setdefault(section.name, (section.file, section.line))
        last: Extension | None = None
        for entry in section.entries:
            key, value, file, line = entry.key, entry.value, entry.file, entry.line
            where = f"{file.name}:{line}"
            if key == "include":
                includes.setdefault(section.name, []).append(value)
                plan.include_lines.append((section.name, value, file, line))
                continue
            if key in _SKIPPED_KEYS:
                continue
            if key == "exten":
                parts = value.split(",", 2)
                if len(parts) >= 2 and parts[1].strip() == "hint":
                    continue
                if len(parts) < 3:
                    raise ConfSyntaxError(file, line, f"'exten => {value}': expected exten,priority,Application(...)")
                name, prio, rest = parts
                name = name.strip()
                last = ctx.get(name)
                if last is None:
                    last = ctx[name] = Extension(name, file=file, line=line)
                elif prio.strip().split("(")[0] in ("1",):
                    raise ConfSyntaxError(file, line, f"extension {name} defined twice in [{section.name}]")
            elif key == "same":
                if last is None:
                    raise ConfSyntaxError(file, line, "'same' without an extension")
                parts = value.split(",", 1)
                if len(parts) < 2:
                    raise ConfSyntaxError(file, line, f"'same => {value}': expected priority,Application(...)")
                prio, rest = parts
            else:
                raise ConfSyntaxError(file, line, f"unexpected {key!r} in a dialplan context")
            m = re.match(r"^\s*(\d+|n)\s*(?:\(([^)]+)\))?\s*$", prio)
            if not m:
                raise ConfSyntaxError(file, line, f"bad priority {prio!r}")
            if m.group(1) != "n" and int(m.group(1)) != len(last.steps) + 1:
                raise ConfSyntaxError(file, line, f"priority {m.group(1)} out of sequence")
            try:
                app, data = app_call(rest)
            except ValueError as exc:
                raise ConfSyntaxError(file, line, str(exc)) from None
            last.steps.append(Step(app, data, m.group(2), where, file, line))
    return plan


def load_dialplan(extensions: Path, roots: Sequence[Path] | None = None) -> Dialplan:
    """``extensions.conf`` (includes followed) as a :class:`Dialplan`."""
    return build_dialplan(read_conf(extensions, roots))


def pattern_matches(pattern: str, exten: str) -> bool:
    """Asterisk extension pattern (``_X.``, ``_[a-z].``, ``_+X.``) against a dialed string."""
    rx = []
    i, body = 0, pattern[1:]
    while i < len(body):
        c = body[i]
        if c == "X":
            rx.append("[0-9]")
        elif c == "Z":
            rx.append("[1-9]")
        elif c == "N":
            rx.append("[2-9]")
        elif c == ".":
            rx.append(".+")
        elif c == "!":
            rx.append(".*")
        elif c == "[":
            j = body.index("]", i)
            rx.append("[" + body[i + 1 : j] + "]")
            i = j
        else:
            rx.append(re.escape(c))
        i += 1
    return re.fullmatch("".join(rx), exten) is not None


def sample_for(exten: str) -> str:
    """A dialed string that an extension (literal or pattern) answers."""
    if not exten.startswith("_"):
        return exten
    out, body, i = [], exten[1:], 0
    while i < len(body):
        c = body[i]
        if c in "XZN":
            out.append("8")
        elif c in ".!":
            out.append("005551234")
        elif c == "[":
            j = body.index("]", i)
            out.append(body[i + 1])
            i = j
        else:
            out.append(c)
        i += 1
    return "".join(out)


def jump_targets(step: Step) -> list[str]:
    """The raw targets a step may jump to (``Goto``, ``GotoIf`` branches, ``Gosub``, inside ``ExecIf``)."""
    if step.app == "Goto":
        return [step.data]
    if step.app == "GotoIf":
        branches = step.data.partition("?")[2]
        return [b for b in branches.split(":") if b]
    if step.app == "Gosub":
        return [step.data.split("(")[0]]
    if step.app == "GosubIf":
        branches = step.data.partition("?")[2]
        return [b.split("(")[0] for b in branches.split(":") if b]
    if step.app == "ExecIf":
        try:
            inner = Step(*app_call(step.data.partition("?")[2]), None, step.where, step.file, step.line)
        except ValueError:
            return []
        return jump_targets(inner)
    return []
