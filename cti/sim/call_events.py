"""Builders for the call, queue and member events, fields in the captured order (``ami_format``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from cti.sim.ami_format import Value, build_event, cdr_quote
from cti.sim.channels import Channel
from cti.sim.queue import Member, Queue

Headers = list[tuple[str, Value]]


def channel_event(name: str, channel: Channel, **extra: Value) -> Headers:
    """An event about one channel: its snapshot then ``extra`` (``Cause``, ``Variable``/``Value`` ...)."""
    return build_event(name, {**channel.snapshot(), **extra})


def dial_event(name: str, caller: Optional[Channel], dest: Channel, **extra: Value) -> Headers:
    """DialBegin/DialState/DialEnd and the Agent* events: caller snapshot + ``Dest`` snapshot + extra."""
    values: dict[str, Value] = {}
    if caller is not None:
        values.update(caller.snapshot())
    values.update(dest.snapshot("Dest"))
    values.update(extra)
    return build_event(name, values)


def queue_caller_event(name: str, caller: Channel, queue: str, **extra: Value) -> Headers:
    return build_event(name, {**caller.snapshot(), "Queue": queue, **extra})


def agent_event(name: str, caller: Channel, agent: Optional[Channel], queue: str, member: Member,
                **extra: Value) -> Headers:
    values: dict[str, Value] = dict(caller.snapshot())
    if agent is not None:
        values.update(agent.snapshot("Dest"))
    values.update({"Queue": queue, "Interface": member.interface, "MemberName": member.name})
    values.update(extra)
    return build_event(name, values)


def member_event(name: str, queue: Queue, member: Member, status: int, in_call: bool,
                 wrapuptime: float) -> Headers:
    """QueueMemberStatus/Added/Removed/Pause/Penalty (``MemberName``/``Interface`` naming)."""
    return build_event(name, {
        "Queue": queue.name,
        "MemberName": member.name,
        "Interface": member.interface,
        "StateInterface": member.interface,
        "Membership": "dynamic" if member.dynamic else "static",
        "Penalty": member.penalty,
        "CallsTaken": member.calls_taken,
        "LastCall": member.last_call,
        "LastPause": member.last_pause,
        "LoginTime": member.login_time,
        "InCall": int(in_call),
        "Status": status,
        "Paused": int(member.paused),
        "PausedReason": member.paused_reason,
        "Ringinuse": 0,
        "Wrapuptime": int(wrapuptime),
    })


def queue_member_item(queue: Queue, member: Member, status: int, in_call: bool, action_id: Optional[str]) -> Headers:
    """The ``QueueMember`` list item of QueueStatus (``Name``/``Location`` naming)."""
    return build_event("QueueMember", {
        "Queue": queue.name,
        "Name": member.name,
        "Location": member.interface,
        "StateInterface": member.interface,
        "Membership": "dynamic" if member.dynamic else "static",
        "Penalty": member.penalty,
        "CallsTaken": member.calls_taken,
        "LastCall": member.last_call,
        "LastPause": member.last_pause,
        "LoginTime": member.login_time,
        "InCall": int(in_call),
        "Status": status,
        "Paused": int(member.paused),
        "PausedReason": member.paused_reason,
        "Wrapuptime": int(queue.config.wrapuptime),
    }, action_id=action_id)


def _cdr_time(epoch: Optional[float]) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def cdr_event(channel: Channel, *, source: str, destination: str, destination_context: str,
              destination_channel: str, last_app: str, last_data: str, end: float) -> Headers:
    duration = int(end - channel.created)
    billable = int(end - channel.answered) if channel.answered is not None else 0
    if channel.answered is None:
        disposition = "NO ANSWER"
    else:
        disposition = "ANSWERED"
    return build_event("Cdr", {
        "AccountCode": channel.accountcode,
        "Source": source,
        "Destination": destination,
        "DestinationContext": destination_context,
        "CallerID": f'"{cdr_quote(channel.caller_name)}" <{channel.caller_num}>',
        "Channel": channel.name,
        "DestinationChannel": destination_channel,
        "LastApplication": last_app,
        "LastData": last_data,
        "StartTime": _cdr_time(channel.created),
        "AnswerTime": _cdr_time(channel.answered),
        "EndTime": _cdr_time(end),
        "Duration": duration,
        "BillableSeconds": billable,
        "Disposition": disposition,
        "AMAFlags": "DOCUMENTATION",
        "UniqueID": channel.uniqueid,
        "UserField": "",
    })


def bridge_event(name: str, bridge_id: str, count: int, channel: Optional[Channel] = None) -> Headers:
    values: dict[str, Value] = {
        "BridgeUniqueid": bridge_id,
        "BridgeType": "basic",
        "BridgeTechnology": "simple_bridge",
        "BridgeCreator": "<unknown>",
        "BridgeName": "<unknown>",
        "BridgeNumChannels": count,
        "BridgeVideoSourceMode": "none",
    }
    if channel is not None:
        values.update(channel.snapshot())
    return build_event(name, values)
