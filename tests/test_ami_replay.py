"""Replay every AMI capture of a real Asterisk 22.10.1 through the parser and the state
machines, chunk by chunk as the bytes arrived (``now`` = the capture's clock), and
assert the resulting state and call records exactly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from cti.ami import events as ev
from cti.ami.capturelog import read_capture
from cti.ami.events import normalize
from cti.ami.protocol import AmiMessage, AmiParser
from cti.calls.live import LiveState

AMI_CAPTURES = [
    "ami-actions", "ami-busy", "ami-call-abandoned", "ami-call-agi-hangup", "ami-call-answered",
    "ami-call-ringnoanswer", "ami-dynamic-members", "ami-hostile-callerid", "ami-least-privilege",
    "ami-login-bad", "ami-login-md5", "ami-priority", "ami-reload", "ami-restart", "ami-restart-reconnect",
    "ami-transfer", "agi-server-down", "agi-server-blackhole",
]


@dataclass
class Replay:
    state: LiveState
    parser: AmiParser
    start: float
    messages: list[AmiMessage] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    changes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def topic(self, name: str) -> list[dict[str, Any]]:
        return [p for t, p in self.changes if t == name]

    @property
    def ended(self) -> dict[str, dict[str, Any]]:
        return {p["uniqueid"]: p for p in self.topic("call.ended")}


def replay(captures: Path, name: str, *, decisions: dict[str, dict[str, Any]] | None = None,
           keep: Callable[[AmiMessage], bool] = lambda m: True,
           stop: Callable[[Any], bool] = lambda e: False) -> Replay:
    cap = read_capture(captures / f"{name}.log")
    assert b"".join(c.data for c in cap.received()) == (captures / f"{name}.in.raw").read_bytes()
    r = Replay(LiveState("default"), AmiParser(), cap.start)
    decisions = dict(decisions or {})
    for chunk in cap.received():
        now = cap.start + chunk.t
        for msg in r.parser.feed(chunk.data):
            r.messages.append(msg)
            if not keep(msg):
                continue
            e = normalize(msg)
            if e is None:
                continue
            r.events.append(e)
            # the FastAGI decision is published before the call reaches the queue
            if isinstance(e, ev.QueueCallerJoin) and e.uniqueid in decisions:
                r.changes += r.state.note_decision({"uniqueid": e.uniqueid, "at": now, **decisions.pop(e.uniqueid)})
            if isinstance(e, ev.Hangup) and e.uniqueid in decisions:
                r.changes += r.state.note_decision({"uniqueid": e.uniqueid, "at": now, **decisions.pop(e.uniqueid)})
            r.changes += r.state.apply(e, now)
            if stop(e):
                return r
    return r


def rel(r: Replay, ts: float | None) -> float | None:
    return None if ts is None else round(ts - r.start, 3)


@pytest.mark.parametrize("name", AMI_CAPTURES)
def test_every_capture_parses_completely_and_leaves_no_open_call(captures: Path, name: str) -> None:
    r = replay(captures, name)
    assert r.parser.pending_bytes == 0
    assert r.messages[0].kind == "banner" and r.messages[0].name == "11.0.0"
    assert all(m.kind in ("event", "response") for m in r.messages[1:])
    assert r.state.calls.active() == []
    assert all(q["waiting"] == [] for q in r.state.snapshot(r.start)["queues"])


def test_answered_call_in_mobile_by_li_na(captures: Path) -> None:
    decision = {"caller_number": "13800138000", "caller_e164": "+8613800138000", "customer_id": 1234,
                "queue": "mobile", "priority": 5, "route": "product", "lang": "zh", "dialed": "8005551234"}
    r = replay(captures, "ami-call-answered", decisions={"1795372412.1": decision})
    assert list(r.ended) == ["1795372412.1"]
    c = r.ended["1795372412.1"]
    assert (c["queue"], c["outcome"], c["agent_interface"], c["agent_name"]) == \
        ("mobile", "answered", "Local/1001@agents/n", "Li Na")
    assert (c["wait_s"], c["talk_s"]) == (2.0, 5.0)  # Asterisk's HoldTime / TalkTime
    assert (c["linkedid"], c["caller_number"], c["caller_name"]) == ("1795372412.0", "13800138000", "Wang Wei")
    assert (c["customer_id"], c["priority"], c["route"], c["caller_e164"]) == (1234, 5, "product", "+8613800138000")
    assert c["transfers"] == 0 and [leg["result"] for leg in c["legs"]] == ["answered"]
    # times follow the bytes: channel created, joined, answered (2 s later), hung up (5 s later)
    assert rel(r, c["answered_at"]) - rel(r, c["queued_at"]) == pytest.approx(2.0, abs=0.2)
    assert 5.0 <= rel(r, c["ended_at"]) - rel(r, c["answered_at"]) < 6.0
    assert c["started_at"] <= c["queued_at"] <= c["answered_at"] <= c["ended_at"]
    ringing = r.topic("call.ringing")
    assert [(p["interface"], p["member_name"], p["customer_id"], p["queue"]) for p in ringing] == \
        [("Local/1001@agents/n", "Li Na", 1234, "mobile")]
    li_na = r.state.agents.by_interface("Local/1001@agents/n")
    assert li_na is not None and li_na.state(r.start + 100) == "ready" and li_na.memberships["mobile"].calls_taken == 1
    states = [p["state"] for p in r.topic("agent.state") if p["interface"] == "Local/1001@agents/n"]
    assert "ringing" in states and "on_call" in states and states[-1] == "ready"
    q = r.state.queue_snapshot("mobile", r.start)
    assert (q["joined"], q["answered"], q["abandoned"], q["waiting"]) == (1, 1, 0, [])
    # the record row the recorder writes
    row = r.state.calls  # the call left the live state at hangup
    assert row.get("1795372412.1") is None


def test_abandoned_call_keeps_asterisks_holdtime(captures: Path) -> None:
    r = replay(captures, "ami-call-abandoned")
    c = r.ended["1795372426.5"]
    assert (c["queue"], c["outcome"], c["wait_s"], c["talk_s"], c["agent_interface"]) == \
        ("mobile", "abandoned", 7.0, None, None)
    assert c["caller_number"] == "13912345678" and c["caller_name"] == "Li Ming"
    # both members were paused for lunch while the caller waited, then unpaused
    paused = [(p["interface"], p["state"], p["paused_reason"]) for p in r.topic("agent.state")]
    assert ("Local/1001@agents/n", "paused", "lunch") in paused and ("Local/1002@agents/n", "paused", "lunch") in paused
    assert [a.state(r.start + 60) for a in r.state.agents.agents.values()] == ["ready", "ready"]
    assert r.state.queue_snapshot("mobile", r.start)["abandoned"] == 1


def test_abandoned_wait_is_visible_while_waiting(captures: Path) -> None:
    r = replay(captures, "ami-call-abandoned", stop=lambda e: isinstance(e, ev.QueueCallerJoin))
    joined_at = r.state.calls.get("1795372426.5").queued_at
    q = r.state.queue_snapshot("mobile", joined_at + 6.5)
    assert q["longest_wait_s"] == pytest.approx(6.5)
    assert [w["uniqueid"] for w in q["waiting"]] == ["1795372426.5"]
    assert q["available"] == 0 and {m["paused_reason"] for m in q["members"]} == {"lunch"}


def test_ring_no_answer_then_liu_yang_answers(captures: Path) -> None:
    r = replay(captures, "ami-call-ringnoanswer")
    stopped = r.topic("call.ring_stopped")
    assert [(p["interface"], p["reason"], p["ring_time_s"]) for p in stopped] == \
        [("Local/2001@agents/n", "noanswer", 15.0)]  # RingTime 15000 ms
    assert [p["member_name"] for p in r.topic("call.ringing")] == ["Zhao Min", "Liu Yang"]
    c = r.ended["1795372477.17"]
    assert (c["queue"], c["outcome"], c["agent_name"], c["agent_interface"], c["wait_s"], c["talk_s"]) == \
        ("appliances", "answered", "Liu Yang", "Local/2002@agents/n", 19.0, 5.0)
    assert c["caller_name"] == "张伟"


def test_priority_10_caller_jumps_ahead_and_is_served_first(captures: Path) -> None:
    r = replay(captures, "ami-priority")
    entries = [e for e in r.events if isinstance(e, ev.QueueEntry)]
    assert {e.uniqueid: e.priority for e in entries} == {"1795432615.5": 0, "1795432616.7": 10}
    joins = [e for e in r.events if isinstance(e, ev.QueueCallerJoin)]
    assert [(e.uniqueid, e.position) for e in joins] == [("1795432615.5", 1), ("1795432616.7", 1)]
    assert list(r.ended) == ["1795432616.7", "1795432615.5"]
    assert (r.ended["1795432616.7"]["wait_s"], r.ended["1795432615.5"]["wait_s"]) == (3.0, 12.0)
    assert {c["agent_name"] for c in r.ended.values()} == {"Sun Li"}
    # while both waited, the priority-10 caller was at position 1
    mid = replay(captures, "ami-priority", stop=lambda e: isinstance(e, ev.QueueCallerJoin) and e.uniqueid == "1795432616.7")
    waiting = mid.state.queue_snapshot("complaints", mid.start)["waiting"]
    assert [(w["uniqueid"], w["position"]) for w in waiting] == [("1795432616.7", 1), ("1795432615.5", 2)]


def test_priority_decision_is_shown_on_the_waiting_entry(captures: Path) -> None:
    mid = replay(captures, "ami-priority", decisions={"1795432616.7": {"priority": 10, "queue": "complaints"},
                                                      "1795432615.5": {"priority": 0, "queue": "complaints"}},
                 stop=lambda e: isinstance(e, ev.QueueCallerJoin) and e.uniqueid == "1795432616.7")
    waiting = mid.state.queue_snapshot("complaints", mid.start)["waiting"]
    assert [(w["uniqueid"], w["priority"]) for w in waiting] == [("1795432616.7", 10), ("1795432615.5", 0)]


def test_blind_transfer_is_one_call_with_two_legs(captures: Path) -> None:
    r = replay(captures, "ami-transfer")
    assert list(r.ended) == ["1795432637.13"]
    c = r.ended["1795432637.13"]
    assert (c["queue"], c["outcome"], c["agent_name"], c["agent_interface"]) == \
        ("mobile", "answered", "Chen Jie", "Local/1002@agents/n")
    assert (c["wait_s"], c["talk_s"], c["transfers"]) == (4.0, 7.0, 1)
    assert [(l["queue"], l["result"], l["agent_name"], l["hold_time"], l["talk_time"]) for l in c["legs"]] == \
        [("complaints", "transferred", "Sun Li", 2, 1), ("mobile", "answered", "Chen Jie", 2, 6)]
    t = r.topic("call.transferred")
    assert [(p["kind"], p["context"], p["extension"], p["queue"], p["interface"]) for p in t] == \
        [("blind", "transfer", "mobile", "complaints", "Local/3001@agents/n")]
    assert [p["queue"] for p in r.topic("call.queued")] == ["complaints", "mobile"]
    # ringall: Zhou Qiang's phone stopped ringing when Sun Li answered
    assert ("Local/3002@agents/n", "answered_elsewhere") in [(p["interface"], p["reason"]) for p in r.topic("call.ring_stopped")]


def test_transfer_that_leads_nowhere_else_is_recorded_as_transferred(captures: Path) -> None:
    # cut the capture right after the first leg's AgentComplete(Reason: transfer), then hang up
    r = replay(captures, "ami-transfer", stop=lambda e: isinstance(e, ev.AgentComplete))
    call = r.state.calls.get("1795432637.13")
    changes = r.state.apply(ev.Hangup("default", call.channel, call.uniqueid, call.linkedid, 16, "Normal Clearing"),
                            call.queued_at + 30)
    ended = [p for t, p in changes if t == "call.ended"][0]
    assert (ended["outcome"], ended["queue"], ended["agent_name"], ended["talk_s"]) == \
        ("transferred", "complaints", "Sun Li", 1.0)


def test_busy_six_overlapping_calls(captures: Path) -> None:
    r = replay(captures, "ami-busy")
    got = {u: (c["queue"], c["outcome"], c["agent_name"], c["wait_s"], c["talk_s"]) for u, c in r.ended.items()}
    assert got == {
        "1795432659.21": ("mobile", "answered", "Li Na", 2.0, 6.0),
        "1795432659.23": ("mobile", "answered", "Chen Jie", 2.0, 6.0),
        "1795432659.27": ("appliances", "answered", "Zhao Min", 2.0, 5.0),
        "1795432660.31": ("appliances", "answered", "Liu Yang", 2.0, 6.0),
        "1795432660.35": ("complaints", "answered", "Sun Li", 2.0, 5.0),
        "1795432661.39": ("mobile", "answered", "Li Na", 8.0, 6.0),
    }
    assert r.parser.stats.messages == len(r.messages) == 1061  # banner + 1060 frames
    assert all(a.state(r.start + 100) == "ready" for a in r.state.agents.agents.values())
    assert sum(q["answered"] for q in r.state.snapshot(r.start)["queues"]) == 6


def test_busy_waiting_counts_match_asterisks_count_after_every_join_and_leave(captures: Path) -> None:
    cap = read_capture(captures / "ami-busy.log")
    state, parser = LiveState(), AmiParser()
    seen: list[tuple[str, int, int]] = []
    for chunk in cap.received():
        for msg in parser.feed(chunk.data):
            e = normalize(msg)
            if e is None:
                continue
            state.apply(e, cap.start + chunk.t)
            if isinstance(e, (ev.QueueCallerJoin, ev.QueueCallerLeave)):
                seen.append((e.queue, e.count, len(state.queues.get(e.queue).waiting)))
    assert len(seen) == 12
    assert [(q, count) for q, count, _ in seen] == [(q, ours) for q, _, ours in seen]
    assert max(count for q, count, _ in seen if q == "mobile") == 2


def test_hostile_caller_id_forges_nothing(captures: Path) -> None:
    r = replay(captures, "ami-hostile-callerid")
    names = {m.name for m in r.messages}
    assert "Fake" not in names
    assert r.parser.stats.unclassified == 3  # the three bogus "agi_extension: 911..." tails
    assert not any(m.get("Channel") == "Local/x" for m in r.messages)
    assert list(r.ended) == ["1795372507.23"]
    c = r.ended["1795372507.23"]
    assert (c["queue"], c["outcome"], c["agent_name"], c["wait_s"], c["talk_s"]) == \
        ("appliances", "answered", "Zhao Min", 2.0, 5.0)
    assert c["caller_number"] == "13500135000"
    # dialplan-class events (the carriers of the forgery) change nothing: same state without them
    clean = replay(captures, "ami-hostile-callerid", keep=lambda m: not m.is_dialplan_class)
    assert clean.changes == r.changes


def test_least_privilege_user_sees_the_same_call_without_dialplan_events(captures: Path) -> None:
    r = replay(captures, "ami-least-privilege")
    assert not any(m.is_dialplan_class for m in r.messages)
    assert not any(m.name in ("Newexten", "VarSet", "AGIExecStart") for m in r.messages)
    c = r.ended["1795432603.1"]
    assert (c["queue"], c["outcome"], c["agent_name"], c["wait_s"], c["talk_s"]) == \
        ("mobile", "answered", "Li Na", 2.0, 5.0)
    refused = [m for m in r.messages if m.kind == "response" and m.name == "Error"]
    assert [m.get("Message") for m in refused] == ["Permission denied"]


@pytest.mark.parametrize("name", ["agi-server-down", "agi-server-blackhole"])
def test_fallback_queue_call_without_a_decision_is_still_recorded(captures: Path, name: str) -> None:
    r = replay(captures, name)
    [c] = r.ended.values()
    assert (c["queue"], c["outcome"], c["route"], c["customer_id"]) == ("appliances", "answered", None, None)


def test_caller_hangs_up_during_agi_is_an_ivr_hangup(captures: Path) -> None:
    r = replay(captures, "ami-call-agi-hangup", decisions={"1795372467.15": {"queue": "mobile", "route": "default"}})
    c = r.ended["1795372467.15"]
    assert (c["outcome"], c["queue"], c["wait_s"], c["talk_s"], c["legs"]) == ("ivr_hangup", None, None, None, [])
    # without a decision the call never reached cti: nothing to record
    assert replay(captures, "ami-call-agi-hangup").ended == {}


def test_dynamic_members_added_paused_penalized_removed(captures: Path) -> None:
    r = replay(captures, "ami-dynamic-members")
    seen = [(p["state"], p["paused_reason"], {q: (v["penalty"], v["paused"]) for q, v in p["queues"].items()})
            for p in r.topic("agent.state") if p["interface"] == "Local/1003@agents/n"]
    assert seen[0] == ("ready", "", {"mobile": (2, False)})
    assert seen[1] == ("ready", "login", {"appliances": (0, True), "mobile": (2, False)})
    assert seen[2] == ("ready", "login", {"appliances": (0, True), "mobile": (1, False)})  # QueuePenalty
    assert seen[4] == ("paused", "training", {"appliances": (0, True), "mobile": (1, True)})  # pause in all queues
    assert seen[-1] == ("logged_out", "", {})
    assert r.state.agents.by_interface("Local/1003@agents/n") is None
    assert r.events[2].membership == "dynamic" and r.events[2].member_name == "Huang Lei"


def test_restart_is_a_bare_eof_and_the_next_session_says_uptime_zero(captures: Path) -> None:
    r = replay(captures, "ami-restart")
    assert read_capture(captures / "ami-restart.log").end_reason == "eof"
    assert r.parser.pending_bytes == 0 and not any(m.name == "Shutdown" for m in r.messages)
    assert r.state.pbx_uptime == 90 and r.state.pbx_restarts == 0
    again = replay(captures, "ami-restart-reconnect")
    assert again.state.pbx_uptime == 0 and again.state.pbx_restarts == 1
    assert again.topic("ami.pbx_restarted")


def test_actions_session_list_items_and_errors(captures: Path) -> None:
    r = replay(captures, "ami-actions")
    errors = [m.get("Message") for m in r.messages if m.kind == "response" and m.name == "Error"]
    assert "Interface not found" in errors and "Originate failed" in errors
    assert "Unable to add interface: Already there" in errors
    members = [e for e in r.events if isinstance(e, ev.QueueMember)]
    assert ("Local/1001@agents/n", "Li Na") in [(m.interface, m.member_name) for m in members]
    sun_li = [m for m in members if m.member_name == "Sun Li"][0]
    assert (sun_li.paused, sun_li.paused_reason, sun_li.queue) == (True, "meeting", "complaints")
    chans = [e for e in r.events if isinstance(e, ev.CoreShowChannel)]
    assert {(c.uniqueid, c.application, c.application_data) for c in chans} >= {("1795372520.27", "Queue", "complaints")}
    assert chans[0].duration_s == 5
    out = [m for m in r.messages if m.get("Message") == "Command output follows" and m.name == "Success"]
    assert any(len(m.getall("Output")) > 3 for m in out)  # queue show complaints: one header per line
