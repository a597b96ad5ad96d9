"""Which files make up the configuration cti checks and deploys, wherever they live.

Two layouts hold the same files:

* this repository (or an admin's copy of it): ``asterisk-config/*.conf`` and ``dialplans/*.conf``;
* an Asterisk configuration directory (``/etc/asterisk``): ``*.conf`` and ``dialplans/*.conf``.

Either way a file is known by its name relative to the Asterisk configuration directory
(``extensions.conf``, ``dialplans/800-line.conf``): that is where deploy writes it and how an
``#include`` names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The files cti checks and deploys (relative to the Asterisk configuration directory).
#: pjsip.conf, modules.conf, logger.conf, musiconhold.conf are install-time files: not deployed.
MANAGED_FILES = ("extensions.conf", "queues.conf", "manager.conf")
DIALPLAN_DIR = "dialplans"


class TreeError(ValueError):
    """The path holds no configuration cti knows how to read."""


@dataclass(frozen=True)
class ConfigTree:
    root: Path
    #: name relative to the Asterisk configuration directory -> file on disk
    files: dict[str, Path]
    #: where a relative ``#include`` is looked up, in order
    include_roots: tuple[Path, ...]

    @classmethod
    def at(cls, path: str | Path) -> "ConfigTree":
        """The tree at ``path``: a repository checkout or an Asterisk configuration directory."""
        root = Path(path)
        if (root / "asterisk-config" / "extensions.conf").is_file():
            conf, dialplans = root / "asterisk-config", root / DIALPLAN_DIR
            roots: tuple[Path, ...] = (conf, root)
        elif (root / "extensions.conf").is_file():
            conf, dialplans = root, root / DIALPLAN_DIR
            roots = (root,)
        else:
            raise TreeError(f"{root}: no extensions.conf (nor asterisk-config/extensions.conf) here")
        files = {name: conf / name for name in MANAGED_FILES if (conf / name).is_file()}
        if dialplans.is_dir():
            for f in sorted(dialplans.glob("*.conf")):
                files[f"{DIALPLAN_DIR}/{f.name}"] = f
        return cls(root, files, roots)

    @classmethod
    def target(cls, path: str | Path) -> "ConfigTree":
        """An Asterisk configuration directory as a deploy target (it may not hold our files yet)."""
        root = Path(path)
        files = {name: root / name for name in MANAGED_FILES if (root / name).is_file()}
        if (root / DIALPLAN_DIR).is_dir():
            for f in sorted((root / DIALPLAN_DIR).glob("*.conf")):
                files[f"{DIALPLAN_DIR}/{f.name}"] = f
        return cls(root, files, (root,))

    def path(self, name: str) -> Path | None:
        return self.files.get(name)

    def require(self, name: str) -> Path:
        p = self.files.get(name)
        if p is None:
            raise TreeError(f"{self.root}: {name} is missing")
        return p
