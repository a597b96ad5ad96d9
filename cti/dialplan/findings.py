"""What a check found: an error or a warning, with the file and line it is about."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class Finding:
    severity: str  # "error" | "warning"
    file: Path | None
    line: int | None
    code: str
    message: str

    def location(self, relative_to: Path | None = None) -> str:
        if self.file is None:
            return "-"
        name = str(self.file)
        base = relative_to or Path.cwd()
        try:
            name = os.path.relpath(self.file, base)
            if name.startswith(".." + os.sep + ".."):
                name = str(self.file)
        except ValueError:
            pass
        return f"{name}:{self.line}" if self.line else name

    def format(self, relative_to: Path | None = None) -> str:
        return f"{self.location(relative_to)}: {self.severity}[{self.code}]: {self.message}"
