"""A call as cti sees it: the caller's channel in the queue, its queue legs, its outcome.

Outcomes (``calls.outcome``):

* ``answered``: the last queue leg was answered by an agent;
* ``abandoned``: the caller hung up while waiting (``QueueCallerAbandon``);
* ``timeout``: the caller left the queue unanswered and not by hanging up (queue timeout,
  exit key) and the call then ended;
* ``transferred``: the last leg ended by a transfer (``AgentComplete`` ``Reason: transfer``)
  that did not lead into another queue;
* ``ivr_hangup``: cti routed the call (FastAGI decision) but it never reached a queue
  (``afterhours`` instead when the decision's route was ``afterhours``);
* ``unknown``: the call ended while cti was not watching (link down / daemon restart) and
  it had not been answered; reconciled at resync.

A blind transfer into another queue gives one call two queue legs. cti writes **one row**
per call (``calls`` is unique on (server, uniqueid)): ``queue``, agent and outcome are the
*final* leg's; ``wait_s`` and ``talk_s`` are totals over all legs (what the caller lived);
``answered_at`` is the first answer. The legs themselves are in the live state and in the
``call.ended`` bus payload (``legs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

OUTCOMES = ("answered", "abandoned", "timeout", "transferred", "ivr_hangup", "afterhours", "unknown")


@dataclass
class Leg:
    """One stay of the call in one queue."""

    queue: str
    queued_at: float
    position: int = 0
    left_at: float | None = None
    answered_at: float | None = None
    agent_interface: str | None = None
    agent_name: str | None = None
    #: seconds waited, from Asterisk's HoldTime when it told us
    hold_time: float | None = None
    talk_time: float | None = None
    #: answered | abandoned | transferred | (None while open; timeout if it ends unanswered)
    result: str | None = None

    def wait_s(self, now: float) -> float:
        if self.hold_time is not None:
            return float(self.hold_time)
        end = self.answered_at or self.left_at or now
        return max(0.0, end - self.queued_at)

    def talk_s(self, now: float) -> float:
        if self.talk_time is not None:
            return float(self.talk_time)
        if self.answered_at is not None:
            return max(0.0, now - self.answered_at)
        return 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "queued_at": self.queued_at,
            "answered_at": self.answered_at,
            "agent_interface": self.agent_interface,
            "agent_name": self.agent_name,
            "hold_time": self.hold_time,
            "talk_time": self.talk_time,
            "result": self.result,
        }


@dataclass
class Call:
    server: str
    uniqueid: str
    started_at: float
    linkedid: str = ""
    channel: str = ""
    caller_number: str = ""
    caller_name: str = ""
    caller_e164: str | None = None
    customer_id: int | None = None
    dialed: str | None = None
    route: str | None = None
    #: the *queue* priority cti chose (decision) or QueueEntry showed
    priority: int | None = None
    ivr_choice: str | None = None
    lang: str | None = None
    #: ivr | queued | ringing | talking | transferring | ended
    state: str = "ivr"
    legs: list[Leg] = field(default_factory=list)
    ringing: dict[str, str] = field(default_factory=dict)  # interface -> member name
    transfers: int = 0
    ended_at: float | None = None
    outcome: str | None = None
    #: restored from the database after a daemon restart, not yet seen live
    restored: bool = False
    #: the channel in the queue when it is not the one that ran the FastAGI (same linkedid)
    queue_uniqueid: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.server, self.uniqueid)

    @property
    def leg(self) -> Leg | None:
        return self.legs[-1] if self.legs else None

    @property
    def queue(self) -> str | None:
        return self.legs[-1].queue if self.legs else None

    @property
    def queued_at(self) -> float | None:
        return self.legs[0].queued_at if self.legs else None

    @property
    def answered_at(self) -> float | None:
        for leg in self.legs:
            if leg.answered_at is not None:
                return leg.answered_at
        return None

    @property
    def agent_interface(self) -> str | None:
        for leg in reversed(self.legs):
            if leg.agent_interface:
                return leg.agent_interface
        return None

    @property
    def agent_name(self) -> str | None:
        for leg in reversed(self.legs):
            if leg.agent_interface:
                return leg.agent_name
        return None

    def wait_s(self, now: float) -> float | None:
        if not self.legs:
            return None
        return sum(leg.wait_s(now) for leg in self.legs)

    def talk_s(self, now: float) -> float | None:
        if self.answered_at is None:
            return None
        return sum(leg.talk_s(now) for leg in self.legs)

    def final_outcome(self) -> str:
        """The outcome from what is known (see the module docstring)."""
        leg = self.leg
        if leg is None:
            return "afterhours" if self.route == "afterhours" else "ivr_hangup"
        if leg.result == "transferred":
            return "transferred"
        if leg.result == "abandoned":
            return "abandoned"
        if leg.answered_at is not None:
            return "answered"
        return "timeout"

    def snapshot(self, now: float) -> dict[str, Any]:
        """JSON-able view for the hub and the wallboard."""
        return {
            "server": self.server,
            "uniqueid": self.uniqueid,
            "linkedid": self.linkedid,
            "channel": self.channel,
            "queue_uniqueid": self.queue_uniqueid,
            "state": self.state,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "caller_e164": self.caller_e164,
            "customer_id": self.customer_id,
            "dialed": self.dialed,
            "route": self.route,
            "queue": self.queue,
            "priority": self.priority,
            "ivr_choice": self.ivr_choice,
            "lang": self.lang,
            "started_at": self.started_at,
            "queued_at": self.queued_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "wait_s": self.wait_s(self.ended_at or now),
            "talk_s": self.talk_s(self.ended_at or now),
            "agent_interface": self.agent_interface,
            "agent_name": self.agent_name,
            "ringing": sorted(self.ringing),
            "transfers": self.transfers,
            "outcome": self.outcome,
            "legs": [leg.to_dict() for leg in self.legs],
        }

    def record(self, now: float) -> dict[str, Any]:
        """The ``calls`` row for this call (open while ``ended_at`` is None). Times are UTC datetimes."""
        at = self.ended_at or now
        return {
            "server": self.server,
            "uniqueid": self.uniqueid,
            "linkedid": self.linkedid or None,
            "caller_number": self.caller_number or None,
            "caller_e164": self.caller_e164,
            "customer_id": self.customer_id,
            "dialed": self.dialed,
            "route": self.route,
            "queue": self.queue,
            "priority": self.priority,
            "ivr_choice": self.ivr_choice,
            "started_at": _dt(self.started_at),
            "queued_at": _dt(self.queued_at),
            "answered_at": _dt(self.answered_at),
            "ended_at": _dt(self.ended_at),
            "wait_s": self.wait_s(at),
            "talk_s": self.talk_s(at),
            "outcome": self.outcome,
            "agent_interface": self.agent_interface,
        }


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)
