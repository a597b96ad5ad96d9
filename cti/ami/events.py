"""Typed, frozen AMI events: the only shape the state machines see.

:func:`normalize` turns an :class:`~cti.ami.protocol.AmiMessage` into one of these, or
``None`` for anything cti does not use (and for every ``dialplan``-class event, whose
fields can be forged by a caller, and for an event that lacks a header it is keyed by:
``Uniqueid``, ``Queue``, ``Interface``; see :func:`missing_fields`). Field names follow the captures, not the docs:

* the ``QueueMember`` list item of ``QueueStatus`` says ``Name``/``Location``; the
  ``QueueMember*`` events say ``MemberName``/``Interface``: both become
  ``member_name``/``interface`` here;
* ``AgentRingNoAnswer.RingTime`` is in milliseconds (``ring_time_ms``); every other
  time (``HoldTime``, ``TalkTime``, ``AgentConnect.RingTime``) is in seconds;
* ``Priority`` of queue events is the dialplan step and is dropped; the *queue*
  priority is only in ``QueueEntry.priority``.

Every event carries ``server`` (``ami.server``) so several PBXs key by (server, uniqueid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from cti.ami.protocol import AmiMessage


def _int(v: str | None, default: int = 0) -> int:
    if not v:
        return default
    try:
        return int(v)
    except ValueError:
        try:
            return int(float(v))
        except ValueError:
            return default


def _bool(v: str | None) -> bool:
    return (v or "").strip().lower() in ("1", "true", "yes", "on")


def _caller(v: str) -> str:
    return "" if v in ("<unknown>", "") else v


@dataclass(frozen=True, slots=True)
class FullyBooted:
    server: str
    uptime: int | None
    status: str


@dataclass(frozen=True, slots=True)
class Newchannel:
    server: str
    channel: str
    uniqueid: str
    linkedid: str
    caller_number: str
    caller_name: str
    context: str
    exten: str


@dataclass(frozen=True, slots=True)
class Hangup:
    server: str
    channel: str
    uniqueid: str
    linkedid: str
    cause: int
    cause_txt: str


@dataclass(frozen=True, slots=True)
class QueueCallerJoin:
    server: str
    channel: str
    uniqueid: str
    linkedid: str
    caller_number: str
    caller_name: str
    queue: str
    position: int
    count: int


@dataclass(frozen=True, slots=True)
class QueueCallerLeave:
    server: str
    channel: str
    uniqueid: str
    linkedid: str
    queue: str
    position: int
    count: int


@dataclass(frozen=True, slots=True)
class QueueCallerAbandon:
    server: str
    channel: str
    uniqueid: str
    linkedid: str
    queue: str
    position: int
    original_position: int
    hold_time: int


@dataclass(frozen=True, slots=True)
class AgentCalled:
    server: str
    channel: str
    uniqueid: str
    linkedid: str
    caller_number: str
    caller_name: str
    queue: str
    interface: str
    member_name: str
    dest_channel: str
    dest_uniqueid: str


@dataclass(frozen=True, slots=True)
class AgentRingNoAnswer:
    server: str
    channel: str
    uniqueid: str
    linkedid: str
    queue: str
    interface: str
    member_name: str
    ring_time_ms: int


@dataclass(frozen=True, slots=True)
class AgentConnect:
    server: str
    channel: str
    uniqueid: str
    linkedid: str
    queue: str
    interface: str
    member_name: str
    dest_uniqueid: str
    hold_time: int
    ring_time: int


@dataclass(frozen=True, slots=True)
class AgentComplete:
    server: str
    channel: str
    uniqueid: str
    linkedid: str
    queue: str
    interface: str
    member_name: str
    hold_time: int
    talk_time: int
    reason: str


@dataclass(frozen=True, slots=True)
class BlindTransfer:
    server: str
    result: str
    transferer_channel: str
    transferer_uniqueid: str
    transferee_channel: str
    transferee_uniqueid: str
    context: str
    extension: str


@dataclass(frozen=True, slots=True)
class AttendedTransfer:
    server: str
    result: str
    orig_transferer_uniqueid: str
    second_transferer_uniqueid: str
    transferee_uniqueid: str
    transfer_target_uniqueid: str
    dest_type: str


@dataclass(frozen=True, slots=True)
class QueueMemberEvent:
    """Common shape of QueueMemberStatus/Added/Removed/Pause/Penalty and the QueueMember list item."""

    server: str
    queue: str
    interface: str
    member_name: str
    state_interface: str
    membership: str
    penalty: int
    calls_taken: int
    last_call: int
    in_call: bool
    status: int
    paused: bool
    paused_reason: str
    wrapup_time: int


class QueueMemberStatus(QueueMemberEvent):
    __slots__ = ()


class QueueMemberAdded(QueueMemberEvent):
    __slots__ = ()


class QueueMemberRemoved(QueueMemberEvent):
    __slots__ = ()


class QueueMemberPause(QueueMemberEvent):
    __slots__ = ()


class QueueMemberPenalty(QueueMemberEvent):
    __slots__ = ()


class QueueMember(QueueMemberEvent):
    """List item of ``QueueStatus`` (``Name``/``Location`` on the wire)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class QueueParams:
    server: str
    queue: str
    strategy: str
    calls: int
    holdtime: int
    talktime: int
    completed: int
    abandoned: int
    weight: int


@dataclass(frozen=True, slots=True)
class QueueEntry:
    server: str
    queue: str
    position: int
    channel: str
    uniqueid: str
    caller_number: str
    caller_name: str
    wait: int
    #: the *queue* priority (QUEUE_PRIO); the only place AMI shows it
    priority: int


@dataclass(frozen=True, slots=True)
class CoreShowChannel:
    server: str
    channel: str
    uniqueid: str
    linkedid: str
    caller_number: str
    caller_name: str
    context: str
    exten: str
    application: str
    application_data: str
    duration_s: int
    bridge_id: str


@dataclass(frozen=True, slots=True)
class DeviceStateChange:
    server: str
    device: str
    state: str


@dataclass(frozen=True, slots=True)
class OriginateResponse:
    server: str
    action_id: str
    response: str
    channel: str
    uniqueid: str
    reason: int


AmiEvent = Union[
    FullyBooted, Newchannel, Hangup, QueueCallerJoin, QueueCallerLeave, QueueCallerAbandon,
    AgentCalled, AgentRingNoAnswer, AgentConnect, AgentComplete, BlindTransfer, AttendedTransfer,
    QueueMemberEvent, QueueParams, QueueEntry, CoreShowChannel, DeviceStateChange, OriginateResponse,
]


def _hms(v: str) -> int:
    """``00:01:05`` -> 65."""
    total = 0
    for part in v.split(":"):
        total = total * 60 + _int(part)
    return total


def _member(cls: type[QueueMemberEvent], list_item: bool = False) -> Callable[[dict[str, str], str], QueueMemberEvent]:
    name_key, iface_key = ("Name", "Location") if list_item else ("MemberName", "Interface")

    def build(f: dict[str, str], server: str) -> QueueMemberEvent:
        iface = f.get(iface_key, "")
        return cls(
            server, f.get("Queue", ""), iface, f.get(name_key, "") or iface,
            f.get("StateInterface", "") or iface, f.get("Membership", ""), _int(f.get("Penalty")),
            _int(f.get("CallsTaken")), _int(f.get("LastCall")), _bool(f.get("InCall")), _int(f.get("Status")),
            _bool(f.get("Paused")), f.get("PausedReason", ""), _int(f.get("Wrapuptime")),
        )

    return build


def _chan(f: dict[str, str]) -> tuple[str, str, str]:
    return f.get("Channel", ""), f.get("Uniqueid", ""), f.get("Linkedid", "")


_BUILDERS: dict[str, Callable[[dict[str, str], str], object]] = {
    "FullyBooted": lambda f, s: FullyBooted(s, _int(f["Uptime"]) if f.get("Uptime", "").isdigit() else None, f.get("Status", "")),
    "Newchannel": lambda f, s: Newchannel(
        s, *_chan(f), _caller(f.get("CallerIDNum", "")), _caller(f.get("CallerIDName", "")),
        f.get("Context", ""), f.get("Exten", ""),
    ),
    "Hangup": lambda f, s: Hangup(s, *_chan(f), _int(f.get("Cause")), f.get("Cause-txt", "")),
    "QueueCallerJoin": lambda f, s: QueueCallerJoin(
        s, *_chan(f), _caller(f.get("CallerIDNum", "")), _caller(f.get("CallerIDName", "")),
        f.get("Queue", ""), _int(f.get("Position")), _int(f.get("Count")),
    ),
    "QueueCallerLeave": lambda f, s: QueueCallerLeave(
        s, *_chan(f), f.get("Queue", ""), _int(f.get("Position")), _int(f.get("Count"))
    ),
    "QueueCallerAbandon": lambda f, s: QueueCallerAbandon(
        s, *_chan(f), f.get("Queue", ""), _int(f.get("Position")), _int(f.get("OriginalPosition")),
        _int(f.get("HoldTime")),
    ),
    "AgentCalled": lambda f, s: AgentCalled(
        s, *_chan(f), _caller(f.get("CallerIDNum", "")), _caller(f.get("CallerIDName", "")),
        f.get("Queue", ""), f.get("Interface", ""), f.get("MemberName", "") or f.get("Interface", ""),
        f.get("DestChannel", ""), f.get("DestUniqueid", ""),
    ),
    "AgentRingNoAnswer": lambda f, s: AgentRingNoAnswer(
        s, *_chan(f), f.get("Queue", ""), f.get("Interface", ""), f.get("MemberName", "") or f.get("Interface", ""),
        _int(f.get("RingTime")),
    ),
    "AgentConnect": lambda f, s: AgentConnect(
        s, *_chan(f), f.get("Queue", ""), f.get("Interface", ""), f.get("MemberName", "") or f.get("Interface", ""),
        f.get("DestUniqueid", ""), _int(f.get("HoldTime")), _int(f.get("RingTime")),
    ),
    "AgentComplete": lambda f, s: AgentComplete(
        s, *_chan(f), f.get("Queue", ""), f.get("Interface", ""), f.get("MemberName", "") or f.get("Interface", ""),
        _int(f.get("HoldTime")), _int(f.get("TalkTime")), f.get("Reason", ""),
    ),
    "BlindTransfer": lambda f, s: BlindTransfer(
        s, f.get("Result", ""), f.get("TransfererChannel", ""), f.get("TransfererUniqueid", ""),
        f.get("TransfereeChannel", ""), f.get("TransfereeUniqueid", ""), f.get("Context", ""), f.get("Extension", ""),
    ),
    "AttendedTransfer": lambda f, s: AttendedTransfer(
        s, f.get("Result", ""), f.get("OrigTransfererUniqueid", ""), f.get("SecondTransfererUniqueid", ""),
        f.get("TransfereeUniqueid", ""), f.get("TransferTargetUniqueid", ""), f.get("DestType", ""),
    ),
    "QueueMemberStatus": _member(QueueMemberStatus),
    "QueueMemberAdded": _member(QueueMemberAdded),
    "QueueMemberRemoved": _member(QueueMemberRemoved),
    "QueueMemberPause": _member(QueueMemberPause),
    "QueueMemberPaused": _member(QueueMemberPause),  # pre-12 name
    "QueueMemberPenalty": _member(QueueMemberPenalty),
    "QueueMember": _member(QueueMember, list_item=True),
    "QueueParams": lambda f, s: QueueParams(
        s, f.get("Queue", ""), f.get("Strategy", ""), _int(f.get("Calls")), _int(f.get("Holdtime")),
        _int(f.get("TalkTime")), _int(f.get("Completed")), _int(f.get("Abandoned")), _int(f.get("Weight")),
    ),
    "QueueEntry": lambda f, s: QueueEntry(
        s, f.get("Queue", ""), _int(f.get("Position")), f.get("Channel", ""), f.get("Uniqueid", ""),
        _caller(f.get("CallerIDNum", "")), _caller(f.get("CallerIDName", "")), _int(f.get("Wait")),
        _int(f.get("Priority")),
    ),
    "CoreShowChannel": lambda f, s: CoreShowChannel(
        s, *_chan(f), _caller(f.get("CallerIDNum", "")), _caller(f.get("CallerIDName", "")),
        f.get("Context", ""), f.get("Exten", ""), f.get("Application", ""), f.get("ApplicationData", ""),
        _hms(f.get("Duration", "")), f.get("BridgeId", "") or f.get("BridgeID", ""),
    ),
    "DeviceStateChange": lambda f, s: DeviceStateChange(s, f.get("Device", ""), f.get("State", "")),
    "OriginateResponse": lambda f, s: OriginateResponse(
        s, f.get("ActionID", ""), f.get("Response", ""), f.get("Channel", ""), f.get("Uniqueid", ""),
        _int(f.get("Reason")),
    ),
}

#: Names of the events cti uses (everything else is ignored without parsing its headers).
USED_EVENTS = frozenset(_BUILDERS)

_CALLER = ("Uniqueid", "Queue")
_AGENT = ("Uniqueid", "Queue", "Interface")
_MEMBER = ("Queue", "Interface")
#: Headers without which an event would key a phantom call, agent or queue by ``""``.
REQUIRED: dict[str, tuple[str, ...]] = {
    "Newchannel": ("Uniqueid",), "Hangup": ("Uniqueid",), "CoreShowChannel": ("Uniqueid",),
    "QueueCallerJoin": _CALLER, "QueueCallerLeave": _CALLER, "QueueCallerAbandon": _CALLER,
    "QueueEntry": _CALLER,
    "AgentCalled": _AGENT, "AgentRingNoAnswer": _AGENT, "AgentConnect": _AGENT, "AgentComplete": _AGENT,
    "QueueMemberStatus": _MEMBER, "QueueMemberAdded": _MEMBER, "QueueMemberRemoved": _MEMBER,
    "QueueMemberPause": _MEMBER, "QueueMemberPaused": _MEMBER, "QueueMemberPenalty": _MEMBER,
    "QueueMember": ("Queue", "Location"), "QueueParams": ("Queue",),
}


def missing_fields(msg: AmiMessage) -> tuple[str, ...]:
    """The required headers ``msg`` lacks (or has empty): such an event is ignored by :func:`normalize`."""
    need = REQUIRED.get(msg.name)
    if not need or msg.kind != "event":
        return ()
    f = msg.fields
    return tuple(k for k in need if not f.get(k))


def normalize(msg: AmiMessage, server: str = "default") -> AmiEvent | None:
    """The typed event for ``msg``, or ``None`` when cti does not use it."""
    if msg.kind != "event":
        return None
    build = _BUILDERS.get(msg.name)
    if build is None:
        return None
    f = msg.fields
    if f.get("Privilege", "").startswith("dialplan"):
        return None
    need = REQUIRED.get(msg.name)
    if need is not None:
        for k in need:
            if not f.get(k):
                return None  # see missing_fields
    return build(f, server)  # type: ignore[return-value]
