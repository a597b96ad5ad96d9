"""Call, agent and queue state machines: tables of cases, no I/O, explicit ``now``."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cti.ami import events as ev
from cti.ami.events import normalize
from cti.ami.protocol import iter_messages
from cti.calls.live import LiveState

S = "default"
T0 = 1_800_000_000.0


def member(cls=ev.QueueMemberStatus, queue="mobile", iface="PJSIP/1001", name="Li Na", *, paused=False, reason="",
           status=1, in_call=False, wrapup=0, penalty=0):
    return cls(S, queue, iface, name, iface, "dynamic", penalty, 0, 0, in_call, status, paused, reason, wrapup)


def join(uid="1.1", queue="mobile", pos=1, count=1):
    return ev.QueueCallerJoin(S, f"Local/c-{uid};2", uid, "1.0", "13800138000", "Wang Wei", queue, pos, count)


def called(uid="1.1", iface="PJSIP/1001", name="Li Na", queue="mobile"):
    return ev.AgentCalled(S, f"Local/c-{uid};2", uid, "1.0", "13800138000", "Wang Wei", queue, iface, name, "a;1", "9.9")


def connect(uid="1.1", iface="PJSIP/1001", name="Li Na", queue="mobile", hold=3):
    return ev.AgentConnect(S, f"Local/c-{uid};2", uid, "1.0", queue, iface, name, "9.9", hold, 1)


def complete(uid="1.1", iface="PJSIP/1001", name="Li Na", queue="mobile", talk=60, reason="agent"):
    return ev.AgentComplete(S, f"Local/c-{uid};2", uid, "1.0", queue, iface, name, 3, talk, reason)


def leave(uid="1.1", queue="mobile"):
    return ev.QueueCallerLeave(S, f"Local/c-{uid};2", uid, "1.0", queue, 1, 0)


def hangup(uid="1.1"):
    return ev.Hangup(S, f"Local/c-{uid};2", uid, "1.0", 16, "Normal Clearing")


def run(state: LiveState, steps):
    out = []
    for at, e in steps:
        out += state.apply(e, T0 + at)
    return out


def ended(changes):
    return [p for t, p in changes if t == "call.ended"]


def test_agent_states_from_login_to_wrap_up() -> None:
    s = LiveState()
    run(s, [(0, member(wrapup=10))])
    a = s.agents.by_interface("PJSIP/1001")
    assert a.state(T0) == "ready"
    run(s, [(1, join()), (2, called())])
    assert a.state(T0 + 2) == "ringing"
    run(s, [(3, leave()), (3, connect())])
    assert a.state(T0 + 3) == "on_call" and a.on_call == "1.1"
    run(s, [(63, complete())])
    assert a.state(T0 + 64) == "wrap_up" and a.state(T0 + 73.5) == "ready"
    run(s, [(80, member(paused=True, reason="lunch"))])
    assert (a.state(T0 + 80), a.paused_reason) == ("paused", "lunch")
    run(s, [(90, member(ev.QueueMemberRemoved))])
    assert s.agents.by_interface("PJSIP/1001") is None


def test_paused_in_one_queue_only_still_ready_paused_everywhere_is_paused() -> None:
    s = LiveState()
    run(s, [(0, member(queue="mobile", paused=True, reason="training")), (0, member(queue="complaints"))])
    a = s.agents.by_interface("PJSIP/1001")
    assert (a.state(T0), a.paused) == ("ready", False)
    run(s, [(1, member(queue="complaints", paused=True, reason="training"))])
    assert (a.state(T0), a.paused, a.paused_reason) == ("paused", True, "training")
    run(s, [(2, member(queue="complaints", status=5)), (2, member(queue="mobile", status=5))])
    assert a.state(T0) == "unavailable"


def test_queue_timeout_is_recorded_as_timeout_with_the_wait_until_leaving() -> None:
    s = LiveState()
    [c] = ended(run(s, [(0, join()), (30, leave()), (45, hangup())]))
    assert (c["outcome"], c["wait_s"], c["talk_s"], c["queue"]) == ("timeout", 30.0, None, "mobile")


def test_decision_before_or_after_the_join_lands_on_the_same_call() -> None:
    decision = {"uniqueid": "1.1", "customer_id": 7, "priority": 10, "route": "complaint", "caller_e164": "+8613800138000",
                "at": T0 - 1}
    for order in ("before", "after"):
        s = LiveState()
        if order == "before":
            s.note_decision(decision)
        run(s, [(0, join())])
        if order == "after":
            s.note_decision(decision)
        call = s.calls.get("1.1")
        assert (call.customer_id, call.priority, call.route) == (7, 10, "complaint"), order
        assert s.queue_snapshot("mobile", T0)["waiting"][0]["priority"] == 10
        assert len(s.calls.active()) == 1


def test_a_late_decision_never_resurrects_an_ended_call() -> None:
    s = LiveState()
    run(s, [(0, join()), (5, hangup())])
    assert s.note_decision({"uniqueid": "1.1", "at": T0 + 6}) == [] and s.calls.active() == []


def test_ringall_answer_stops_the_other_phones() -> None:
    s = LiveState()
    run(s, [(0, member(iface="PJSIP/1")), (0, member(iface="PJSIP/2", name="B"))])
    out = run(s, [(1, join()), (1, called(iface="PJSIP/1")), (1, called(iface="PJSIP/2", name="B")),
                  (3, leave()), (3, connect(iface="PJSIP/2", name="B"))])
    stops = [(p["interface"], p["reason"]) for t, p in out if t == "call.ring_stopped"]
    assert stops == [("PJSIP/1", "answered_elsewhere")]
    assert s.agents.by_interface("PJSIP/1").state(T0 + 3) == "ready"
    assert s.agents.by_interface("PJSIP/2").state(T0 + 3) == "on_call"


def test_caller_hanging_up_while_ringing_frees_the_agent() -> None:
    s = LiveState()
    run(s, [(0, member()), (1, join()), (2, called())])
    abandon = ev.QueueCallerAbandon(S, "c", "1.1", "1.0", "mobile", 1, 1, 4)
    out = run(s, [(5, abandon), (5, leave()), (5, hangup())])
    assert s.agents.by_interface("PJSIP/1001").state(T0 + 5) == "ready"
    [c] = ended(out)
    assert (c["outcome"], c["wait_s"]) == ("abandoned", 4.0)


def test_resync_removes_stale_agents_and_ghost_calls_and_adopts_new_waiting_callers() -> None:
    s = LiveState()
    run(s, [(0, member(iface="PJSIP/1")), (0, member(iface="PJSIP/2", name="B")), (1, join("1.1")),
            (2, join("2.1", pos=2, count=2)), (3, called("2.1", iface="PJSIP/1")), (4, leave("1.1")),
            (4, connect("1.1", iface="PJSIP/2", name="B"))])
    # during the gap: 2.1 hung up, 3.1 joined complaints (priority 10), agent PJSIP/1 logged out
    items = [
        ev.QueueParams(S, "mobile", "rrmemory", 0, 3, 60, 5, 1, 0),
        ev.QueueParams(S, "complaints", "ringall", 1, 0, 0, 0, 0, 10),
        member(ev.QueueMember, iface="PJSIP/2", name="B", status=2, in_call=True),
        ev.QueueEntry(S, "complaints", 1, "Local/c-3.1;2", "3.1", "13900000000", "New", 12, 10),
        ev.CoreShowChannel(S, "Local/c-1.1;2", "1.1", "1.0", "", "", "from-pstn", "800", "Queue", "mobile", 40, "b-1"),
        ev.CoreShowChannel(S, "Local/c-3.1;2", "3.1", "3.0", "", "", "from-pstn", "800", "Queue", "complaints", 13, ""),
    ]
    out = s.resync(items, T0 + 100)
    assert [(p["uniqueid"], p["outcome"]) for p in ended(out)] == [("2.1", "unknown")]
    assert sorted(c.uniqueid for c in s.calls.active()) == ["1.1", "3.1"]
    assert s.agents.by_interface("PJSIP/1") is None
    b = s.agents.by_interface("PJSIP/2")
    assert (b.state(T0 + 100), b.on_call) == ("on_call", "1.1")
    new = s.calls.get("3.1")
    assert (new.queue, new.priority, new.state, new.queued_at) == ("complaints", 10, "queued", T0 + 88)
    q = s.queue_snapshot("complaints", T0 + 100)
    assert [(w["uniqueid"], w["wait_s"], w["priority"]) for w in q["waiting"]] == [("3.1", 12.0, 10)]
    assert s.queue_snapshot("mobile", T0 + 100)["waiting"] == []
    assert [p["state"] for t, p in out if t == "ami.link"] == ["resynced"]


def test_unknown_and_dialplan_events_are_ignored() -> None:
    raw = (b"Asterisk Call Manager/11.0.0\r\nEvent: VarSet\r\nPrivilege: dialplan,all\r\nValue: x\r\n\r\n"
           b"Event: Cdr\r\nPrivilege: cdr,all\r\n\r\nEvent: Hangup\r\nPrivilege: dialplan,all\r\nUniqueid: 1.1\r\n\r\n"
           b"Event: SomethingNew\r\nPrivilege: call,all\r\n\r\n")
    assert [normalize(m) for m in iter_messages(raw)] == [None, None, None, None, None]


def _answered_events(captures: Path) -> list[object]:
    return [e for e in (normalize(m) for m in iter_messages((captures / "ami-call-answered.in.raw").read_bytes()))
            if e is not None]


def test_cross_channel_order_does_not_change_the_record(captures: Path) -> None:
    """AgentComplete before or after the agent leg's Hangup (it varies between runs)."""
    evs = _answered_events(captures)
    i = next(k for k, e in enumerate(evs) if isinstance(e, ev.AgentComplete))
    agent_hangups = [k for k, e in enumerate(evs) if isinstance(e, ev.Hangup) and e.channel.startswith("Local/1001@")]
    moved = [e for k, e in enumerate(evs) if k not in agent_hangups]
    assert len(agent_hangups) == 2 and all(k > i for k in agent_hangups)
    moved[i:i] = [evs[k] for k in agent_hangups]  # the agent's legs hang up before AgentComplete
    a, b = LiveState(), LiveState()
    ea = ended([c for n, e in enumerate(evs) for c in a.apply(e, T0 + n)])
    eb = ended([c for n, e in enumerate(moved) for c in b.apply(e, T0 + n)])
    keys = ("uniqueid", "queue", "outcome", "wait_s", "talk_s", "agent_interface", "agent_name")
    assert [{k: p[k] for k in keys} for p in ea] == [{k: p[k] for k in keys} for p in eb]


@settings(max_examples=60, deadline=None)
@given(st.permutations(list(range(12))))
def test_any_order_of_one_calls_events_never_crashes_or_leaks(order: list[int]) -> None:
    events = [member(), join(), called(), member(status=2), leave(), connect(), member(in_call=True, status=2),
              complete(), member(), hangup(), ev.BlindTransfer(S, "Success", "a;1", "9.9", "c", "1.1", "t", "mobile"),
              ev.QueueCallerAbandon(S, "c", "1.1", "1.0", "mobile", 1, 1, 4)]
    s = LiveState()
    for n, k in enumerate(order):
        s.apply(events[k], T0 + n)
    s.apply(hangup(), T0 + 100)  # whatever happened, the hangup closes the call
    assert s.calls.active() == []
    assert s.queue_snapshot("mobile", T0 + 100)["waiting"] == []
    assert s.agents.by_interface("PJSIP/1001").on_call is None


def test_routed_on_one_channel_queued_on_another_of_the_same_call_is_one_call() -> None:
    s = LiveState()
    s.apply(ev.Newchannel(S, "PJSIP/trunk-1", "1.5", "1.4", "13800138000", "", "from-pstn", "800"), T0)
    s.note_decision({"uniqueid": "1.5", "customer_id": 7, "priority": 10, "route": "complaint", "at": T0 + 1})
    q = ev.QueueCallerJoin(S, "Local/q-1;2", "1.7", "1.4", "13800138000", "Wang Wei", "complaints", 1, 1)
    out = run(s, [(2, q)])
    assert [p["uniqueid"] for t, p in out if t == "call.queued"] == ["1.5"]
    assert s.queue_snapshot("complaints", T0 + 2)["waiting"][0]["priority"] == 10
    out = run(s, [(3, ev.Hangup(S, "PJSIP/trunk-1", "1.5", "1.4", 16, ""))])  # e.g. a Local optimization
    assert ended(out) == [] and len(s.calls.active()) == 1
    out = run(s, [(4, called("1.7", queue="complaints")), (5, leave("1.7", "complaints")),
                  (5, connect("1.7", queue="complaints", hold=3)), (65, complete("1.7", queue="complaints")),
                  (66, hangup("1.7"))])
    [c] = ended(out)
    assert (c["uniqueid"], c["queue_uniqueid"], c["outcome"], c["customer_id"], c["priority"], c["talk_s"]) == \
        ("1.5", "1.7", "answered", 7, 10, 60.0)
    assert s.calls.active() == [] and s.calls.get("1.7") is None


def test_caller_started_blind_transfer_is_counted() -> None:
    """Asterisk's testsuite apps/queues/transfer/caller_blind: the queue *caller* blind-transfers
    the agent, so the caller is the transferer and the agent's channel (9.9) the transferee."""
    s = LiveState()
    run(s, [(0, member()), (1, join()), (2, called()), (3, leave()), (3, connect())])
    blind = ev.BlindTransfer(S, "Success", "Local/c-1.1;2", "1.1", "Local/1001@agents;1", "9.9", "agents", "1002")
    out = run(s, [(30, blind), (30, complete(talk=27, reason="transfer")), (31, hangup())])
    [moved] = [p for t, p in out if t == "call.transferred"]
    assert (moved["uniqueid"], moved["kind"], moved["interface"], moved["extension"]) == \
        ("1.1", "blind", "PJSIP/1001", "1002")
    [c] = ended(out)
    assert (c["transfers"], c["queue"], c["agent_interface"]) == (1, "mobile", "PJSIP/1001")


def test_resync_while_the_agents_phone_rings_leaves_the_caller_queued() -> None:
    s = LiveState()
    run(s, [(0, member()), (1, join()), (2, called())])
    assert s.calls.get("1.1").state == "ringing"
    items = [
        ev.QueueParams(S, "mobile", "rrmemory", 1, 0, 0, 0, 0, 0),
        member(ev.QueueMember),
        ev.QueueEntry(S, "mobile", 1, "Local/c-1.1;2", "1.1", "13800138000", "Wang Wei", 5, 0),
        ev.CoreShowChannel(S, "Local/c-1.1;2", "1.1", "1.0", "", "", "from-pstn", "800", "Queue", "mobile", 6, ""),
    ]
    s.resync(items, T0 + 6)
    call = s.calls.get("1.1")
    assert (call.state, call.ringing) == ("queued", {})
    assert s.agents.by_interface("PJSIP/1001").state(T0 + 6) == "ready"
