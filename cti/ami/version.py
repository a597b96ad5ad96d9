"""Which Asterisk is on the other end of the AMI link, and whether cti's AMI user is safe on it.

On Asterisk 12.0 to 15.x the ``Newexten`` event is in the ``call`` class (ASTERISK-28033 moved it
to ``dialplan`` in 16.0.0), and cti needs ``call``: its raw ``AppData`` can then forge AMI frames
unless manager.conf's ``eventfilter`` for the user drops it (asterisk-config/manager.conf).

The version comes from ``CoreSettings`` (``AsteriskVersion: 22.10.1``) and, when that action is
refused, from the banner's AMI version (``Asterisk Call Manager/11.0.0``): AMI 2.x is Asterisk
12/13, 3.x is 14, 4.x is 15, and from 5.x (Asterisk 16) on the AMI major is Asterisk's minus 11.
Pure: strings in, values out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Version = tuple[int, int, int]

#: The first Asterisk whose ``Newexten`` is in the ``dialplan`` class.
SAFE_SINCE: Version = (16, 0, 0)
POLICIES = ("warn", "refuse")

_NUMBERS = re.compile(r"(?:^|[/ ])(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> Version | None:
    """``22.10.1`` -> (22, 10, 1); ``certified/18.9-cert1`` -> (18, 9, 0); ``GIT-master-1a2b`` -> None."""
    m = _NUMBERS.search(text or "")
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def asterisk_major_from_ami(ami_version: Version) -> int | None:
    """Asterisk's major version from the AMI protocol version (None before Asterisk 12)."""
    major = ami_version[0]
    if major >= 5:
        return major + 11
    return {2: 12, 3: 14, 4: 15}.get(major)


@dataclass(frozen=True, slots=True)
class PbxVersion:
    """What cti learned about the PBX at login."""

    #: ``AsteriskVersion`` of ``CoreSettings``, or "" when refused
    asterisk: str
    #: the banner's AMI version (``11.0.0``), or ""
    ami: str

    @property
    def known(self) -> Version | None:
        """Asterisk's version as far as it can be told (from the banner: ``(major, 0, 0)`` at best)."""
        v = parse_version(self.asterisk)
        if v is not None:
            return v
        ami = parse_version(self.ami)
        if ami is None:
            return None
        major = asterisk_major_from_ami(ami)
        return (major, 0, 0) if major is not None else (11, 0, 0)  # AMI 1.x: Asterisk 11 or older

    @property
    def unsafe(self) -> bool:
        """True when ``Newexten`` may arrive in a class cti reads (known and below :data:`SAFE_SINCE`)."""
        v = self.known
        return v is not None and v < SAFE_SINCE


def banner_ami_version(banner: str) -> str:
    """``11.0.0`` (the parser's banner name) or ``Asterisk Call Manager/11.0.0`` -> ``11.0.0``; else ""."""
    prefix = "Asterisk Call Manager/"
    text = (banner[len(prefix):] if banner.startswith(prefix) else banner).strip()
    return text if parse_version(text) is not None else ""
