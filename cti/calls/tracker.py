"""Call state machine: pure, fed one event at a time with ``now`` (epoch seconds).

A call is the caller's channel that runs the 800 line (FastAGI ``agi_uniqueid``) and sits
in the queue (``QueueCallerJoin.Uniqueid``): the same channel, so both are keyed by
(server, uniqueid). A call starts being tracked at the FastAGI decision
(:meth:`CallTracker.note_decision`) or at its first ``QueueCallerJoin``; other channels
(the originating ``;1`` leg, agents' legs) are only remembered for their start time.

``apply`` returns the bus messages the event causes, as ``(topic, payload)`` pairs, and
marks changed calls dirty for the recorder (:meth:`take_dirty`).
"""

from __future__ import annotations

from typing import Any, Iterable

from cti.ami import events as ev
from cti.calls.model import Call, Leg

Change = tuple[str, dict[str, Any]]

#: Remember channel start times for at most this many live channels (a leak guard).
MAX_CHANNELS = 100_000
#: A call created by a FastAGI decision whose channel AMI has not shown (yet) is "unconfirmed": it is
#: not recorded, and it is forgotten after this many seconds if no AMI event for it ever arrives
#: (a forged FastAGI session, an Asterisk whose AMI cti does not follow). At most MAX_UNCONFIRMED.
UNCONFIRMED_TTL_S = 120.0
MAX_UNCONFIRMED = 20_000


class CallTracker:
    def __init__(self, server: str = "default") -> None:
        self.server = server
        self.calls: dict[tuple[str, str], Call] = {}
        #: uniqueid -> (started_at, linkedid, channel) for live channels
        self.channels: dict[str, tuple[float, str, str]] = {}
        self._dirty: dict[tuple[str, str], Call] = {}
        self._by_linkedid: dict[str, tuple[str, str]] = {}
        #: (server, queue channel uniqueid) -> call, when the queue runs on another channel than the AGI
        self._aliases: dict[tuple[str, str], Call] = {}
        self.ended_count = 0
        #: uniqueids of calls ended recently: a late decision must not resurrect them
        self._ended_recent: dict[str, float] = {}
        #: calls known only from a FastAGI decision -> decided at (age order)
        self._unconfirmed: dict[tuple[str, str], float] = {}
        self.unconfirmed_expired = 0

    # -- queries -------------------------------------------------------------------
    def get(self, uniqueid: str, server: str | None = None) -> Call | None:
        """The live call whose AGI channel or queue channel is ``uniqueid``."""
        return self._find(server or self.server, uniqueid)

    def _find(self, server: str, uniqueid: str) -> Call | None:
        call = self.calls.get((server, uniqueid))
        if call is None and self._aliases:
            call = self._aliases.get((server, uniqueid))
        return call

    def by_linkedid(self, linkedid: str, server: str | None = None) -> Call | None:
        key = self._by_linkedid.get(linkedid)
        return self.calls.get(key) if key else None

    def active(self) -> list[Call]:
        return list(self.calls.values())

    def take_dirty(self) -> list[Call]:
        """Calls changed since the last call (the recorder persists them)."""
        if not self._dirty:
            return []
        out = list(self._dirty.values())
        self._dirty.clear()
        return out

    # -- inputs --------------------------------------------------------------------
    def note_decision(
        self,
        uniqueid: str,
        *,
        at: float,
        server: str | None = None,
        caller_number: str | None = None,
        caller_e164: str | None = None,
        customer_id: int | None = None,
        queue: str | None = None,
        priority: int | None = None,
        route: str | None = None,
        ivr_choice: str | None = None,
        dialed: str | None = None,
        lang: str | None = None,
        **_ignored: Any,
    ) -> list[Change]:
        """Attach the FastAGI routing decision (bus ``agi.decision``) to the call."""
        key = (server or self.server, uniqueid)
        if self._unconfirmed:
            self._expire_unconfirmed(at)
        call = self._find(*key)
        if call is None:
            if uniqueid in self._ended_recent:
                return []
            chan = self.channels.get(uniqueid)
            call = Call(key[0], uniqueid, started_at=chan[0] if chan else at)
            if chan:
                call.linkedid, call.channel = chan[1], chan[2]
            else:  # AMI has not shown this channel: no record until it does (see UNCONFIRMED_TTL_S)
                self._unconfirmed[key] = at
            self._add(call)
        if caller_number:
            call.caller_number = caller_number
        call.caller_e164 = caller_e164 or call.caller_e164
        if call.customer_id is None:  # the caller a call was first decided for stays its caller
            call.customer_id = customer_id
        call.priority = priority if priority is not None else call.priority
        call.route = route or call.route
        call.ivr_choice = ivr_choice or call.ivr_choice
        call.dialed = dialed or call.dialed
        call.lang = lang or call.lang
        if key not in self._unconfirmed:
            self._dirty[key] = call
        return [("call.routed", {**self._ident(call), "queue": queue, "route": call.route, "at": at})]

    def apply(self, e: object, now: float) -> list[Change]:
        t = type(e)
        if t is ev.Newchannel:
            if len(self.channels) < MAX_CHANNELS:
                self.channels[e.uniqueid] = (now, e.linkedid, e.channel)  # type: ignore[attr-defined]
            if self._unconfirmed:
                self._confirm((e.server, e.uniqueid))  # type: ignore[attr-defined]
            return []
        handler = _HANDLERS.get(t)
        if handler is None:
            return []
        if self._unconfirmed:
            uid = getattr(e, "uniqueid", None)
            if uid:
                self._confirm((getattr(e, "server", None) or self.server, uid))
        return handler(self, e, now)

    def _confirm(self, key: tuple[str, str]) -> None:
        """AMI shows the channel of a call known only from its decision: a real call, recorded from now on."""
        if self._unconfirmed.pop(key, None) is None:
            return
        call = self.calls.get(key)
        if call is None:
            return
        chan = self.channels.get(key[1])
        if chan and not call.linkedid:
            call.linkedid, call.channel = chan[1], chan[2]
            self._by_linkedid[call.linkedid] = key
        self._dirty[key] = call

    def _expire_unconfirmed(self, now: float) -> None:
        """Forget decided calls that no AMI event confirmed within UNCONFIRMED_TTL_S (oldest first)."""
        pending = self._unconfirmed
        limit = now - UNCONFIRMED_TTL_S
        while pending:
            key = next(iter(pending))
            if pending[key] > limit and len(pending) < MAX_UNCONFIRMED:
                return
            del pending[key]
            call = self.calls.get(key)
            if call is not None and not call.legs and call.state in ("ivr", "new", ""):
                del self.calls[key]
                self._dirty.pop(key, None)
            self.unconfirmed_expired += 1

    # -- handlers ------------------------------------------------------------------
    def _join(self, e: ev.QueueCallerJoin, now: float) -> list[Change]:
        key = (e.server, e.uniqueid)
        call = self._find(e.server, e.uniqueid)
        if call is None and e.linkedid:
            # routed on one channel, queued on another of the same call (linkedid): one call
            cand_key = self._by_linkedid.get(e.linkedid)
            cand = self.calls.get(cand_key) if cand_key else None
            if cand is not None and cand.state == "ivr" and not cand.legs and cand.server == e.server:
                call = cand
                call.queue_uniqueid = e.uniqueid
                self._aliases[key] = call
        if call is None:
            chan = self.channels.get(e.uniqueid)
            call = Call(e.server, e.uniqueid, started_at=chan[0] if chan else now)
            self._add(call)
        call.linkedid = call.linkedid or e.linkedid
        self._by_linkedid[call.linkedid] = call.key
        call.channel = e.channel
        call.caller_number = call.caller_number or e.caller_number
        call.caller_name = e.caller_name or call.caller_name
        call.restored = False
        leg = call.leg
        if (leg is not None and leg.queue == e.queue and leg.left_at is None and leg.answered_at is None
                and leg.result is None):
            leg.position = e.position  # the same stay seen twice (a join buffered during a resync)
        else:
            call.legs.append(Leg(queue=e.queue, queued_at=now, position=e.position))
        call.state = "queued"
        self._dirty[key] = call
        return [("call.queued", {**self._ident(call), "queue": e.queue, "position": e.position,
                                  "count": e.count, "priority": call.priority, "at": now})]

    def _called(self, e: ev.AgentCalled, now: float) -> list[Change]:
        call = self._find(e.server, e.uniqueid)
        if call is None:
            return []
        call.ringing[e.interface] = e.member_name
        if call.state in ("queued", "ringing"):
            call.state = "ringing"
        return [("call.ringing", {**self._ident(call), "queue": e.queue, "interface": e.interface,
                                   "member_name": e.member_name, "priority": call.priority,
                                   "route": call.route, "lang": call.lang, "dialed": call.dialed, "at": now})]

    def _noanswer(self, e: ev.AgentRingNoAnswer, now: float) -> list[Change]:
        call = self._find(e.server, e.uniqueid)
        if call is None:
            return []
        call.ringing.pop(e.interface, None)
        if call.state == "ringing" and not call.ringing:
            call.state = "queued"
        return [("call.ring_stopped", {**self._ident(call), "queue": e.queue, "interface": e.interface,
                                        "reason": "noanswer", "ring_time_s": e.ring_time_ms / 1000.0, "at": now})]

    def _leave(self, e: ev.QueueCallerLeave, now: float) -> list[Change]:
        call = self._find(e.server, e.uniqueid)
        if call is None or call.leg is None:
            return []
        leg = call.leg
        if leg.left_at is None:
            leg.left_at = now
        self._dirty[call.key] = call
        return []

    def _abandon(self, e: ev.QueueCallerAbandon, now: float) -> list[Change]:
        call = self._find(e.server, e.uniqueid)
        if call is None or call.leg is None:
            return []
        leg = call.leg
        leg.result = "abandoned"
        leg.hold_time = e.hold_time
        leg.left_at = leg.left_at or now
        changes = self._stop_ringing(call, "caller_left", now)
        self._dirty[call.key] = call
        return changes + [("call.abandoned", {**self._ident(call), "queue": e.queue, "hold_time": e.hold_time,
                                               "position": e.position, "at": now})]

    def _connect(self, e: ev.AgentConnect, now: float) -> list[Change]:
        call = self._find(e.server, e.uniqueid)
        if call is None:
            return []
        leg = call.leg
        if leg is None or leg.queue != e.queue or leg.answered_at is not None:
            leg = Leg(queue=e.queue, queued_at=now - e.hold_time)
            call.legs.append(leg)
        leg.answered_at = now
        leg.hold_time = e.hold_time
        leg.agent_interface = e.interface
        leg.agent_name = e.member_name
        leg.result = "answered"
        call.ringing.pop(e.interface, None)
        changes = self._stop_ringing(call, "answered_elsewhere", now)
        call.state = "talking"
        self._dirty[call.key] = call
        changes.append(("call.answered", {**self._ident(call), "queue": e.queue, "interface": e.interface,
                                           "member_name": e.member_name, "hold_time": e.hold_time,
                                           "ring_time": e.ring_time, "at": now}))
        return changes

    def _complete(self, e: ev.AgentComplete, now: float) -> list[Change]:
        call = self._find(e.server, e.uniqueid)
        if call is None:
            return []
        leg = call.leg
        if leg is None or leg.agent_interface != e.interface:
            for cand in reversed(call.legs):
                if cand.agent_interface == e.interface and cand.queue == e.queue:
                    leg = cand
                    break
        if leg is None:
            return []
        leg.talk_time = e.talk_time
        leg.hold_time = e.hold_time
        if e.reason == "transfer":
            leg.result = "transferred"
            call.state = "transferring"
        else:
            call.state = "talking" if call.state == "talking" else call.state
        self._dirty[call.key] = call
        return [("call.completed", {**self._ident(call), "queue": e.queue, "interface": e.interface,
                                     "member_name": e.member_name, "talk_time": e.talk_time,
                                     "reason": e.reason, "at": now})]

    def _blind(self, e: ev.BlindTransfer, now: float) -> list[Change]:
        # the agent transfers the caller (transferee), or the caller transfers the agent
        # (transferer: Asterisk's testsuite apps/queues/transfer/caller_blind)
        if e.result not in ("Success", ""):
            return []
        call = self._find(e.server, e.transferee_uniqueid) if e.transferee_uniqueid else None
        if call is None and e.transferer_uniqueid:
            call = self._find(e.server, e.transferer_uniqueid)
        if call is None:
            return []
        call.transfers += 1
        call.state = "transferring"
        self._dirty[call.key] = call
        return [("call.transferred", {**self._ident(call), "kind": "blind", "queue": call.queue,
                                       "interface": call.agent_interface, "context": e.context,
                                       "extension": e.extension, "at": now})]

    def _attended(self, e: ev.AttendedTransfer, now: float) -> list[Change]:
        if e.result not in ("Success", ""):
            return []
        for uid in (e.transferee_uniqueid, e.orig_transferer_uniqueid, e.second_transferer_uniqueid,
                    e.transfer_target_uniqueid):
            call = self._find(e.server, uid) if uid else None
            if call is not None:
                call.transfers += 1
                call.state = "transferring"
                self._dirty[call.key] = call
                return [("call.transferred", {**self._ident(call), "kind": "attended", "queue": call.queue,
                                               "interface": call.agent_interface, "at": now})]
        return []

    def _hangup(self, e: ev.Hangup, now: float) -> list[Change]:
        self.channels.pop(e.uniqueid, None)
        call = self._find(e.server, e.uniqueid)
        if call is None:
            return []
        if call.queue_uniqueid and call.queue_uniqueid != e.uniqueid:
            return []  # the routing channel went away; the queue channel carries the call on
        return self.end(call, now)

    # -- lifecycle -----------------------------------------------------------------
    def end(self, call: Call, now: float, outcome: str | None = None) -> list[Change]:
        """Close ``call`` at ``now`` (Hangup, or reconciliation when it vanished)."""
        changes = self._stop_ringing(call, "caller_left", now)
        for leg in call.legs:
            if leg.left_at is None:
                leg.left_at = now
            if leg.answered_at is None and leg.result is None:
                leg.result = "timeout"
        call.ended_at = now
        call.outcome = outcome or call.final_outcome()
        call.state = "ended"
        self.calls.pop(call.key, None)
        if call.queue_uniqueid:
            self._aliases.pop((call.server, call.queue_uniqueid), None)
        if self._by_linkedid.get(call.linkedid) == call.key:
            del self._by_linkedid[call.linkedid]
        self._ended_recent[call.uniqueid] = now
        if len(self._ended_recent) > 10_000:
            for uid in list(self._ended_recent)[:5_000]:
                del self._ended_recent[uid]
        self._dirty[call.key] = call
        self.ended_count += 1
        changes.append(("call.ended", call.snapshot(now)))
        return changes

    def restore(self, calls: Iterable[Call]) -> None:
        """Load calls that were open when the daemon stopped (reconciled at the next resync)."""
        for call in calls:
            call.restored = True
            self._add(call)

    def reconcile(self, live_uniqueids: set[str], queue_entries: dict[str, ev.QueueEntry],
                  now: float) -> list[Change]:
        """After a resync: calls whose channel is gone are closed; waiting ones updated."""
        changes: list[Change] = []
        for call in list(self.calls.values()):
            if call.server != self.server:
                continue
            if call.uniqueid not in live_uniqueids and call.queue_uniqueid not in live_uniqueids:
                outcome = None
                if call.answered_at is None and call.leg is not None and call.leg.result is None:
                    outcome = "unknown"
                changes += self.end(call, now, outcome)
                continue
            entry = queue_entries.get(call.queue_uniqueid or call.uniqueid)
            if entry is not None:
                call.priority = entry.priority
                leg = call.leg
                if leg is None or leg.queue != entry.queue or leg.answered_at is not None:
                    call.legs.append(Leg(queue=entry.queue, queued_at=now - entry.wait, position=entry.position))
                else:
                    leg.position = entry.position
                # waiting in the queue; Asterisk does not list who rings, and the agents' rings end here too
                call.state = "queued"
                call.ringing.clear()
            elif call.state == "ringing":
                call.ringing.clear()
                call.state = "queued"
            call.restored = False
            self._dirty[call.key] = call
        # callers waiting in a queue that cti had not seen join (joined during the gap)
        for uid, entry in queue_entries.items():
            key = (self.server, uid)
            if key in self.calls or key in self._aliases:
                continue
            chan = self.channels.get(uid)
            call = Call(self.server, uid, started_at=chan[0] if chan else now - entry.wait,
                        linkedid=chan[1] if chan else "", channel=entry.channel,
                        caller_number=entry.caller_number, caller_name=entry.caller_name,
                        priority=entry.priority, state="queued")
            call.legs.append(Leg(queue=entry.queue, queued_at=now - entry.wait, position=entry.position))
            self._add(call)
            self._dirty[key] = call
            changes.append(("call.queued", {**self._ident(call), "queue": entry.queue, "position": entry.position,
                                             "count": None, "priority": entry.priority, "at": now}))
        return changes

    # -- helpers -------------------------------------------------------------------
    def _add(self, call: Call) -> None:
        self.calls[call.key] = call
        if call.linkedid:
            self._by_linkedid[call.linkedid] = call.key

    def _stop_ringing(self, call: Call, reason: str, now: float) -> list[Change]:
        if not call.ringing:
            return []
        out = [("call.ring_stopped", {**self._ident(call), "queue": call.queue, "interface": iface,
                                       "reason": reason, "ring_time_s": None, "at": now})
               for iface in call.ringing]
        call.ringing.clear()
        return out

    @staticmethod
    def _ident(call: Call) -> dict[str, Any]:
        return {
            "server": call.server,
            "uniqueid": call.uniqueid,
            "linkedid": call.linkedid,
            "caller_number": call.caller_number,
            "caller_name": call.caller_name,
            "caller_e164": call.caller_e164,
            "customer_id": call.customer_id,
        }


_HANDLERS = {
    ev.QueueCallerJoin: CallTracker._join,
    ev.AgentCalled: CallTracker._called,
    ev.AgentRingNoAnswer: CallTracker._noanswer,
    ev.QueueCallerLeave: CallTracker._leave,
    ev.QueueCallerAbandon: CallTracker._abandon,
    ev.AgentConnect: CallTracker._connect,
    ev.AgentComplete: CallTracker._complete,
    ev.BlindTransfer: CallTracker._blind,
    ev.AttendedTransfer: CallTracker._attended,
    ev.Hangup: CallTracker._hangup,
}
