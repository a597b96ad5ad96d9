"""Simulated channels: names, uniqueids and the channel snapshot every call event carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from cti.sim.ami_format import CHANNEL_FIELDS, Value, c_escape

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}
STATE_DOWN, STATE_RING, STATE_RINGING, STATE_UP = 0, 4, 5, 6


class IdAllocator:
    """Uniqueids as Asterisk makes them, ``<seconds>.<n>``: the channel's creation time (epoch
    seconds of the PBX's clock, ``now``) and a per-process counter from 0 (``1795372412.0``), so a
    restarted simulator does not reuse the last run's uniqueids; and the 8-hex-digit channel
    sequence of names like ``PJSIP/trunk-0000000a``."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._uid = 0
        self._chan = 0

    def uniqueid(self) -> str:
        uid = f"{int(self._now())}.{self._uid}"
        self._uid += 1
        return uid

    def channel_suffix(self) -> str:
        suffix = f"{self._chan:08x}"
        self._chan += 1
        return suffix


def channel_name(interface: str, suffix: str) -> str:
    """Channel name of a call to ``interface``: ``PJSIP/1001`` -> ``PJSIP/1001-0000000b``;
    ``Local/1001@agents/n`` -> ``Local/1001@agents-0000000b;1`` (the ``;1`` leg app_queue sees)."""
    if interface.startswith("Local/"):
        base = interface[:-2] if interface.endswith("/n") else interface
        return f"{base}-{suffix};1"
    return f"{interface}-{suffix}"


@dataclass
class Channel:
    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    priority: int = 1
    state: int = STATE_DOWN
    caller_num: str = "<unknown>"
    caller_name: str = "<unknown>"
    connected_num: str = "<unknown>"
    connected_name: str = "<unknown>"
    language: str = "en"
    accountcode: str = ""
    created: float = 0.0
    answered: Optional[float] = None
    application: str = ""
    app_data: str = ""
    bridge_id: str = ""
    dnid: str = ""
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def tech(self) -> str:
        return self.name.split("/", 1)[0]

    def snapshot(self, prefix: str = "") -> dict[str, Value]:
        """The 14 channel fields (names optionally prefixed), caller data C-escaped as Asterisk does."""
        values: dict[str, Value] = {
            "Channel": self.name,
            "ChannelState": self.state,
            "ChannelStateDesc": STATE_DESC.get(self.state, "Unknown"),
            "CallerIDNum": c_escape(self.caller_num),
            "CallerIDName": c_escape(self.caller_name),
            "ConnectedLineNum": c_escape(self.connected_num),
            "ConnectedLineName": c_escape(self.connected_name),
            "Language": self.language,
            "AccountCode": self.accountcode,
            "Context": self.context,
            "Exten": self.exten,
            "Priority": self.priority,
            "Uniqueid": self.uniqueid,
            "Linkedid": self.linkedid,
        }
        assert tuple(values) == CHANNEL_FIELDS
        if not prefix:
            return values
        return {prefix + key: value for key, value in values.items()}

    def callerid_all(self) -> str:
        """``${CALLERID(all)}``: raw, not escaped (this is what ``Newexten.AppData`` carries)."""
        return f'"{self.caller_name}" <{self.caller_num}>'
