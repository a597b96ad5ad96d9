"""asterisklint (PyPI) over ``extensions.conf`` and its includes, in-process.

asterisklint resolves ``#include`` next to the including file; Asterisk resolves it in the
configuration directory. The opener below maps a path asterisklint asks for to the file
Asterisk would read, so a repository checkout (``asterisk-config/`` + ``dialplans/``) is
linted exactly like ``/etc/asterisk``. Its messages (``E_*`` errors, ``W_*`` warnings;
``H_*`` hints are dropped) come back as :class:`~cti.dialplan.findings.Finding`.

asterisklint keeps its messages in class-level state and prints them to stderr; the run is
serialized and muted, and the state reset, so repeated checks in one process (an editor
hook, the tests) do not leak into each other.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO

from cti.dialplan.conf import resolve_include
from cti.dialplan.findings import Finding
from cti.dialplan.tree import ConfigTree

_LOCK = threading.Lock()


def _opener(tree: ConfigTree, entry: Path):
    def open_(filename: str) -> IO[bytes]:
        p = Path(filename)
        if p == entry or p.is_absolute() and p.is_file() and p.resolve() == entry.resolve():
            return open(entry, "rb")
        # asterisklint joins the include with the including file's directory: undo that
        # and resolve the way Asterisk does (relative to the configuration directory).
        for parent in {entry.parent, *(f.parent for f in tree.files.values())}:
            try:
                rel = p.relative_to(parent)
            except ValueError:
                continue
            found = resolve_include(str(rel), tree.include_roots)
            if found is not None:
                return open(found, "rb")
        found = resolve_include(filename, tree.include_roots)
        if found is None:
            raise FileNotFoundError(filename)
        return open(found, "rb")

    return open_


def lint_dialplan(tree: ConfigTree) -> list[Finding]:
    """asterisklint's dialplan-check over the tree's ``extensions.conf``."""
    from asterisklint import FileDialplanParser
    from asterisklint.defines import MessageDefManager

    entry = tree.require("extensions.conf")
    with _LOCK:
        MessageDefManager.reset()
        was_muted = MessageDefManager.muted
        MessageDefManager.muted = True
        try:
            parser = FileDialplanParser(opener=_opener(tree, entry))
            parser.include(str(entry))
            dialplan = next(iter(parser))
            dialplan.walk_jump_destinations()
            raised = dict(MessageDefManager.raised)
        finally:
            MessageDefManager.muted = was_muted
            MessageDefManager.reset()
    findings = []
    for code, messages in raised.items():
        if code.startswith("H_"):
            continue
        severity = "error" if code.startswith("E_") else "warning"
        for msg in messages:
            if msg.muted:  # ALINT_IGNORE
                continue
            text = msg.message.format(**msg.fmtkwargs)
            findings.append(Finding(severity, Path(os.fspath(msg.where.filename)), msg.where.lineno,
                                    f"asterisklint:{code}", text))
    return findings
