"""AMI wire format of Asterisk 22.10.1, as captured in ``asterisk-captures/``.

The field templates below were extracted once, at development time, from every ``ami-*.in.raw``
capture (for each event name, the longest header sequence seen; ``tests/test_sim_ami_shape.py``
re-derives them from the captures and fails if they drift). Nothing here reads files at run time.

Rendering is sans-IO: ``render_message(headers) -> bytes``. Values are ``str`` (encoded UTF-8) or
``bytes`` (sent raw, as Asterisk does for ``Newexten.AppData``/``VarSet.Value``).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Union

Value = Union[str, bytes, int]

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
AMI_VERSION = "11.0.0"
ASTERISK_VERSION = "22.10.1"

#: Channel snapshot fields, in wire order (optionally prefixed with ``Dest``, ``LocalOne`` ...).
CHANNEL_FIELDS: tuple[str, ...] = (
    "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
    "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
    "Uniqueid", "Linkedid",
)

#: Queue member fields of the ``QueueMember*`` events (not the QueueStatus ``QueueMember`` list item).
MEMBER_EVENT_FIELDS: tuple[str, ...] = (
    "Queue", "MemberName", "Interface", "StateInterface", "Membership", "Penalty", "CallsTaken",
    "LastCall", "LastPause", "LoginTime", "InCall", "Status", "Paused", "PausedReason", "Ringinuse",
    "Wrapuptime",
)

#: Header names after ``Event`` for every event type seen in the captures, in wire order.
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "AGIExecEnd": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "CommandId", "Command", "ResultCode", "Result",
    ),
    "AGIExecStart": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "CommandId", "Command",
    ),
    "AgentCalled": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "DestChannel", "DestChannelState", "DestChannelStateDesc", "DestCallerIDNum",
        "DestCallerIDName", "DestConnectedLineNum", "DestConnectedLineName", "DestLanguage",
        "DestAccountCode", "DestContext", "DestExten", "DestPriority", "DestUniqueid", "DestLinkedid",
        "Queue", "Interface", "MemberName",
    ),
    "AgentComplete": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "DestChannel", "DestChannelState", "DestChannelStateDesc", "DestCallerIDNum",
        "DestCallerIDName", "DestConnectedLineNum", "DestConnectedLineName", "DestLanguage",
        "DestAccountCode", "DestContext", "DestExten", "DestPriority", "DestUniqueid", "DestLinkedid",
        "Queue", "Interface", "MemberName", "HoldTime", "TalkTime", "Reason",
    ),
    "AgentConnect": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "DestChannel", "DestChannelState", "DestChannelStateDesc", "DestCallerIDNum",
        "DestCallerIDName", "DestConnectedLineNum", "DestConnectedLineName", "DestLanguage",
        "DestAccountCode", "DestContext", "DestExten", "DestPriority", "DestUniqueid", "DestLinkedid",
        "Queue", "Interface", "MemberName", "HoldTime", "RingTime",
    ),
    "AgentRingNoAnswer": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "DestChannel", "DestChannelState", "DestChannelStateDesc", "DestCallerIDNum",
        "DestCallerIDName", "DestConnectedLineNum", "DestConnectedLineName", "DestLanguage",
        "DestAccountCode", "DestContext", "DestExten", "DestPriority", "DestUniqueid", "DestLinkedid",
        "Queue", "Interface", "MemberName", "RingTime",
    ),
    "BlindTransfer": (
        "Privilege", "Result", "TransfererChannel", "TransfererChannelState", "TransfererChannelStateDesc",
        "TransfererCallerIDNum", "TransfererCallerIDName", "TransfererConnectedLineNum",
        "TransfererConnectedLineName", "TransfererLanguage", "TransfererAccountCode", "TransfererContext",
        "TransfererExten", "TransfererPriority", "TransfererUniqueid", "TransfererLinkedid",
        "TransfereeChannel", "TransfereeChannelState", "TransfereeChannelStateDesc", "TransfereeCallerIDNum",
        "TransfereeCallerIDName", "TransfereeConnectedLineNum", "TransfereeConnectedLineName",
        "TransfereeLanguage", "TransfereeAccountCode", "TransfereeContext", "TransfereeExten",
        "TransfereePriority", "TransfereeUniqueid", "TransfereeLinkedid", "BridgeUniqueid", "BridgeType",
        "BridgeTechnology", "BridgeCreator", "BridgeName", "BridgeNumChannels", "BridgeVideoSourceMode",
        "IsExternal", "Context", "Extension",
    ),
    "BridgeCreate": (
        "Privilege", "BridgeUniqueid", "BridgeType", "BridgeTechnology", "BridgeCreator", "BridgeName",
        "BridgeNumChannels", "BridgeVideoSourceMode",
    ),
    "BridgeDestroy": (
        "Privilege", "BridgeUniqueid", "BridgeType", "BridgeTechnology", "BridgeCreator", "BridgeName",
        "BridgeNumChannels", "BridgeVideoSourceMode",
    ),
    "BridgeEnter": (
        "Privilege", "BridgeUniqueid", "BridgeType", "BridgeTechnology", "BridgeCreator", "BridgeName",
        "BridgeNumChannels", "BridgeVideoSourceMode", "Channel", "ChannelState", "ChannelStateDesc",
        "CallerIDNum", "CallerIDName", "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode",
        "Context", "Exten", "Priority", "Uniqueid", "Linkedid",
    ),
    "BridgeLeave": (
        "Privilege", "BridgeUniqueid", "BridgeType", "BridgeTechnology", "BridgeCreator", "BridgeName",
        "BridgeNumChannels", "BridgeVideoSourceMode", "Channel", "ChannelState", "ChannelStateDesc",
        "CallerIDNum", "CallerIDName", "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode",
        "Context", "Exten", "Priority", "Uniqueid", "Linkedid",
    ),
    "Cdr": (
        "Privilege", "AccountCode", "Source", "Destination", "DestinationContext", "CallerID", "Channel",
        "DestinationChannel", "LastApplication", "LastData", "StartTime", "AnswerTime", "EndTime", "Duration",
        "BillableSeconds", "Disposition", "AMAFlags", "UniqueID", "UserField",
    ),
    "CoreShowChannel": (
        "ActionID", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "Application", "ApplicationData", "Duration", "BridgeId",
    ),
    "CoreShowChannelsComplete": (
        "ActionID", "EventList", "ListItems",
    ),
    "DeviceStateChange": (
        "Privilege", "Device", "State",
    ),
    "DialBegin": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "DestChannel", "DestChannelState", "DestChannelStateDesc", "DestCallerIDNum",
        "DestCallerIDName", "DestConnectedLineNum", "DestConnectedLineName", "DestLanguage",
        "DestAccountCode", "DestContext", "DestExten", "DestPriority", "DestUniqueid", "DestLinkedid",
        "DialString",
    ),
    "DialEnd": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "DestChannel", "DestChannelState", "DestChannelStateDesc", "DestCallerIDNum",
        "DestCallerIDName", "DestConnectedLineNum", "DestConnectedLineName", "DestLanguage",
        "DestAccountCode", "DestContext", "DestExten", "DestPriority", "DestUniqueid", "DestLinkedid",
        "DialStatus",
    ),
    "DialState": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "DestChannel", "DestChannelState", "DestChannelStateDesc", "DestCallerIDNum",
        "DestCallerIDName", "DestConnectedLineNum", "DestConnectedLineName", "DestLanguage",
        "DestAccountCode", "DestContext", "DestExten", "DestPriority", "DestUniqueid", "DestLinkedid",
        "DialStatus",
    ),
    "FullyBooted": (
        "Privilege", "Uptime", "LastReload", "Status",
    ),
    "Hangup": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "Cause", "Cause-txt",
    ),
    "HangupRequest": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "Cause",
    ),
    "ListDialplan": (
        "ActionID", "Context", "Extension", "Priority", "Application", "AppData", "Registrar",
    ),
    "LocalBridge": (
        "Privilege", "LocalOneChannel", "LocalOneChannelState", "LocalOneChannelStateDesc",
        "LocalOneCallerIDNum", "LocalOneCallerIDName", "LocalOneConnectedLineNum",
        "LocalOneConnectedLineName", "LocalOneLanguage", "LocalOneAccountCode", "LocalOneContext",
        "LocalOneExten", "LocalOnePriority", "LocalOneUniqueid", "LocalOneLinkedid", "LocalTwoChannel",
        "LocalTwoChannelState", "LocalTwoChannelStateDesc", "LocalTwoCallerIDNum", "LocalTwoCallerIDName",
        "LocalTwoConnectedLineNum", "LocalTwoConnectedLineName", "LocalTwoLanguage", "LocalTwoAccountCode",
        "LocalTwoContext", "LocalTwoExten", "LocalTwoPriority", "LocalTwoUniqueid", "LocalTwoLinkedid",
        "Context", "Exten", "LocalOptimization",
    ),
    "MusicOnHoldStart": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "Class",
    ),
    "MusicOnHoldStop": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid",
    ),
    "NewCallerid": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "CID-CallingPres",
    ),
    "NewConnectedLine": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid",
    ),
    "Newchannel": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid",
    ),
    "Newexten": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "Extension", "Application", "AppData",
    ),
    "Newstate": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid",
    ),
    "OriginateResponse": (
        "Privilege", "ActionID", "Response", "Channel", "Context", "Exten", "Reason", "Uniqueid",
        "CallerIDNum", "CallerIDName",
    ),
    "QueueCallerAbandon": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "Queue", "Position", "OriginalPosition", "HoldTime",
    ),
    "QueueCallerJoin": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "Queue", "Position", "Count",
    ),
    "QueueCallerLeave": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "Queue", "Position", "Count",
    ),
    "QueueEntry": (
        "Queue", "Position", "Channel", "Uniqueid", "CallerIDNum", "CallerIDName", "ConnectedLineNum",
        "ConnectedLineName", "Wait", "Priority", "ActionID",
    ),
    "QueueMember": (
        "Queue", "Name", "Location", "StateInterface", "Membership", "Penalty", "CallsTaken", "LastCall",
        "LastPause", "LoginTime", "InCall", "Status", "Paused", "PausedReason", "Wrapuptime", "ActionID",
    ),
    "QueueMemberAdded": (
        "Privilege", "Queue", "MemberName", "Interface", "StateInterface", "Membership", "Penalty",
        "CallsTaken", "LastCall", "LastPause", "LoginTime", "InCall", "Status", "Paused", "PausedReason",
        "Ringinuse", "Wrapuptime",
    ),
    "QueueMemberPause": (
        "Privilege", "Queue", "MemberName", "Interface", "StateInterface", "Membership", "Penalty",
        "CallsTaken", "LastCall", "LastPause", "LoginTime", "InCall", "Status", "Paused", "PausedReason",
        "Ringinuse", "Wrapuptime",
    ),
    "QueueMemberPenalty": (
        "Privilege", "Queue", "MemberName", "Interface", "StateInterface", "Membership", "Penalty",
        "CallsTaken", "LastCall", "LastPause", "LoginTime", "InCall", "Status", "Paused", "PausedReason",
        "Ringinuse", "Wrapuptime",
    ),
    "QueueMemberRemoved": (
        "Privilege", "Queue", "MemberName", "Interface", "StateInterface", "Membership", "Penalty",
        "CallsTaken", "LastCall", "LastPause", "LoginTime", "InCall", "Status", "Paused", "PausedReason",
        "Ringinuse", "Wrapuptime",
    ),
    "QueueMemberStatus": (
        "Privilege", "Queue", "MemberName", "Interface", "StateInterface", "Membership", "Penalty",
        "CallsTaken", "LastCall", "LastPause", "LoginTime", "InCall", "Status", "Paused", "PausedReason",
        "Ringinuse", "Wrapuptime",
    ),
    "QueueParams": (
        "Queue", "Max", "Strategy", "Calls", "Holdtime", "TalkTime", "Completed", "Abandoned", "ServiceLevel",
        "ServicelevelPerf", "ServicelevelPerf2", "Weight", "ActionID",
    ),
    "QueueStatusComplete": (
        "ActionID", "EventList", "ListItems",
    ),
    "QueueSummary": (
        "Queue", "LoggedIn", "Available", "Callers", "HoldTime", "TalkTime", "LongestHoldTime", "ActionID",
    ),
    "QueueSummaryComplete": (
        "ActionID", "EventList", "ListItems",
    ),
    "Reload": (
        "Privilege", "Module", "Status",
    ),
    "ShowDialPlanComplete": (
        "ActionID", "EventList", "ListItems", "ListExtensions", "ListPriorities", "ListContexts",
    ),
    "SoftHangupRequest": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "Cause",
    ),
    "Status": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "Type", "DNID", "EffectiveConnectedLineNum", "EffectiveConnectedLineName",
        "TimeToHangup", "BridgeID", "Application", "Data", "Nativeformats", "Readformat", "Readtrans",
        "Writeformat", "Writetrans", "Callgroup", "Pickupgroup", "Seconds", "ActionID",
    ),
    "StatusComplete": (
        "ActionID", "EventList", "ListItems", "Items",
    ),
    "SuccessfulAuth": (
        "Privilege", "EventTV", "Severity", "Service", "EventVersion", "AccountID", "SessionID",
        "LocalAddress", "RemoteAddress", "UsingPassword", "SessionTV",
    ),
    "Unhold": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid",
    ),
    "VarSet": (
        "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
        "Uniqueid", "Linkedid", "Variable", "Value",
    ),
}

#: ``Privilege`` header of each event (its first word is the manager.conf read class).
EVENT_PRIVILEGE: dict[str, str] = {
    "AGIExecEnd": "agi,all",
    "AGIExecStart": "agi,all",
    "AgentCalled": "agent,all",
    "AgentComplete": "agent,all",
    "AgentConnect": "agent,all",
    "AgentRingNoAnswer": "agent,all",
    "BlindTransfer": "call,all",
    "BridgeCreate": "call,all",
    "BridgeDestroy": "call,all",
    "BridgeEnter": "call,all",
    "BridgeLeave": "call,all",
    "Cdr": "cdr,all",
    "DeviceStateChange": "call,all",
    "DialBegin": "call,all",
    "DialEnd": "call,all",
    "DialState": "call,all",
    "FullyBooted": "system,all",
    "Hangup": "call,all",
    "HangupRequest": "call,all",
    "LocalBridge": "call,all",
    "MusicOnHoldStart": "call,all",
    "MusicOnHoldStop": "call,all",
    "NewCallerid": "call,all",
    "NewConnectedLine": "call,all",
    "Newchannel": "call,all",
    "Newexten": "dialplan,all",
    "Newstate": "call,all",
    "OriginateResponse": "call,all",
    "QueueCallerAbandon": "agent,all",
    "QueueCallerJoin": "agent,all",
    "QueueCallerLeave": "agent,all",
    "QueueMemberAdded": "agent,all",
    "QueueMemberPause": "agent,all",
    "QueueMemberPenalty": "agent,all",
    "QueueMemberRemoved": "agent,all",
    "QueueMemberStatus": "agent,all",
    "Reload": "system,all",
    "SoftHangupRequest": "call,all",
    "Status": "Call",
    "SuccessfulAuth": "security,all",
    "Unhold": "call,all",
    "VarSet": "dialplan,all",
}

#: Read classes that ``read = all`` expands to (manager.conf).
ALL_READ_CLASSES = frozenset(
    {"system", "call", "log", "verbose", "command", "agent", "user", "config", "dtmf", "reporting",
     "cdr", "dialplan", "originate", "agi", "cc", "aoc", "test", "security", "message"}
)

# Response texts, byte for byte as captured.
MSG_AUTH_ACCEPTED = "Authentication accepted"
MSG_AUTH_FAILED = "Authentication failed"
MSG_GOODBYE = "Thanks for all the fish."
MSG_PERMISSION_DENIED = "Permission denied"
MSG_ORIGINATE_QUEUED = "Originate successfully queued"
MSG_ORIGINATE_FAILED = "Originate failed"
MSG_QUEUE_STATUS_FOLLOWS = "Queue status will follow"
MSG_QUEUE_SUMMARY_FOLLOWS = "Queue summary will follow"
MSG_CHANNELS_FOLLOW = "Channels will follow"
MSG_STATUS_FOLLOWS = "Channel status will follow"
MSG_COMMAND_OUTPUT = "Command output follows"
MSG_PAUSED = "Interface paused successfully"
MSG_UNPAUSED = "Interface unpaused successfully"
MSG_INTERFACE_NOT_FOUND = "Interface not found"
MSG_ADDED = "Added interface to queue"
MSG_ADD_ALREADY = "Unable to add interface: Already there"
MSG_ADD_NO_QUEUE = "Unable to add interface to queue: No such queue"
MSG_REMOVED = "Removed interface from queue"
MSG_REMOVE_NOT_THERE = "Unable to remove interface: Not there"
MSG_REMOVE_NO_QUEUE = "Unable to remove interface from queue: No such queue"
MSG_PENALTY_SET = "Interface penalty set successfully"
MSG_PENALTY_FAILED = "Invalid interface, queuename or penalty"
MSG_VARIABLE_SET = "Variable Set"
MSG_NO_SUCH_CHANNEL = "No such channel"
MSG_CHANNEL_HUNGUP = "Channel Hungup"
MSG_MISSING_ACTION = "Missing action in request"


def unknown_action_message(action: str) -> str:
    return f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands."


def unknown_cli_output(command: str) -> str:
    words = command.split()
    return f"No such command '{command}' (type 'core show help {' '.join(words[:2])}' for other possible commands)"


def c_escape(text: str) -> str:
    """Escape a caller-controlled string the way channel snapshot fields carry it (``\\"``, ``\\'``, ``\\r`` ...).

    UTF-8 and other control bytes (``\\x01``) stay raw, as in ``ami-hostile-callerid``.
    """
    table = {'"': '\\"', "'": "\\'", "\\": "\\\\", "\r": "\\r", "\n": "\\n", "\t": "\\t"}
    return "".join(table.get(ch, ch) for ch in text)


def cdr_quote(text: str) -> str:
    """Quote a caller name for the ``Cdr`` event's ``CallerID``: backslash before ``"``, ``\\``, CR, LF."""
    return "".join("\\" + ch if ch in '"\\\r\n' else ch for ch in text)


def _encode(value: Value) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


def render_message(headers: Iterable[tuple[str, Value]]) -> bytes:
    """One AMI message: ``Key: value`` lines, CRLF, a blank line at the end."""
    out = bytearray()
    for key, value in headers:
        out += key.encode("ascii") + b": " + _encode(value) + b"\r\n"
    out += b"\r\n"
    return bytes(out)


def build_event(name: str, values: Mapping[str, Value], *, action_id: str | None = None) -> list[tuple[str, Value]]:
    """Headers of event ``name`` in the captured order; fields absent from ``values`` are left out.

    ``Privilege`` is filled in from :data:`EVENT_PRIVILEGE`; ``ActionID`` (list items, OriginateResponse)
    goes where the template puts it. A key that the template does not know is a programming error.
    """
    template = EVENT_FIELDS[name]
    unknown = set(values) - set(template) - {"ActionID"}
    if unknown:
        raise KeyError(f"{name}: fields not in the captured template: {sorted(unknown)}")
    headers: list[tuple[str, Value]] = [("Event", name)]
    for field in template:
        if field == "Privilege":
            headers.append(("Privilege", EVENT_PRIVILEGE[name]))
        elif field == "ActionID":
            if action_id is not None:
                headers.append(("ActionID", action_id))
        elif field in values:
            headers.append((field, values[field]))
    return headers


def event_class(headers: list[tuple[str, Value]]) -> str | None:
    """The manager read class of an event (first word of ``Privilege``), None for list items."""
    for key, value in headers:
        if key == "Privilege":
            return str(value).split(",")[0].lower()
    return None
