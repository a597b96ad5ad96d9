"""The app_queue model: strategies, priorities, penalties, pause, wrap-up, ring timeout + retry, abandon."""

from __future__ import annotations

import pytest

from cti.sim.queue import (
    DEVICE_INUSE,
    DEVICE_NOT_INUSE,
    DEVICE_RINGING,
    MemberConfig,
    QueueConfig,
    QueueError,
    QueueSystem,
    Strategy,
)

T0 = 1_800_000_000.0
A, B, C = "PJSIP/1001", "PJSIP/1002", "PJSIP/1003"


def system(strategy: Strategy = Strategy.RRMEMORY, *, penalties=(0, 0, 0), wrapuptime: float = 0,
           timeout: float = 15, retry: float = 2) -> QueueSystem:
    members = tuple(MemberConfig(i, n, p) for i, n, p in zip((A, B, C), ("Ann", "Bob", "Cy"), penalties))
    return QueueSystem([QueueConfig("q", strategy, timeout=timeout, retry=retry, wrapuptime=wrapuptime,
                                    members=members)], T0)


def serve(qs: QueueSystem, uid: str, now: float, talk: float = 60.0) -> str:
    """Join, ring, the first rung member answers and talks ``talk`` s; returns that member."""
    qs.join("q", uid, 0, now)
    ring = qs.ring_decisions(now)[0]
    member = ring.interfaces[0]
    qs.answer("q", uid, member, now + 1)
    qs.complete("q", member, talk, now + 1 + talk)
    return member


@pytest.mark.parametrize("strategy, expected", [
    (Strategy.RINGALL, [(A, B, C)]),
    (Strategy.RRMEMORY, [(A,)]),
    (Strategy.LEASTRECENT, [(A,)]),
    (Strategy.FEWESTCALLS, [(A,)]),
])
def test_first_ring_by_strategy(strategy: Strategy, expected) -> None:
    qs = system(strategy)
    qs.join("q", "c1", 0, T0)
    assert [r.interfaces for r in qs.ring_decisions(T0)] == expected


@pytest.mark.parametrize("strategy, sequence", [
    # rrmemory: round robin, remembering where it stopped
    (Strategy.RRMEMORY, [A, B, C, A, B]),
    # leastrecent: the member whose last call ended longest ago (never-called first, in order)
    (Strategy.LEASTRECENT, [A, B, C, A, B]),
    # fewestcalls: fewest calls taken, ties by member order
    (Strategy.FEWESTCALLS, [A, B, C, A, B]),
    # ringall: all ring, the first to answer (here always A) takes it
    (Strategy.RINGALL, [A, A, A, A, A]),
])
def test_successive_calls_by_strategy(strategy: Strategy, sequence: list[str]) -> None:
    qs = system(strategy)
    served = [serve(qs, f"c{i}", T0 + 1000 * i) for i in range(5)]
    assert served == sequence


def test_leastrecent_prefers_the_member_idle_longest() -> None:
    qs = system(Strategy.LEASTRECENT)
    qs.devices[A].last_call_end = T0 - 10
    qs.devices[B].last_call_end = T0 - 500
    qs.devices[C].last_call_end = T0 - 100
    qs.join("q", "c1", 0, T0)
    assert qs.ring_decisions(T0)[0].interfaces == (B,)


def test_fewestcalls_prefers_the_member_with_fewest_calls() -> None:
    qs = system(Strategy.FEWESTCALLS)
    q = qs.queue("q")
    q.member(A).calls_taken, q.member(B).calls_taken, q.member(C).calls_taken = 5, 3, 4
    qs.join("q", "c1", 0, T0)
    assert qs.ring_decisions(T0)[0].interfaces == (B,)


@pytest.mark.parametrize("joins, order", [
    ([("a", 0), ("b", 0), ("c", 0)], ["a", "b", "c"]),  # FIFO
    ([("a", 0), ("b", 10)], ["b", "a"]),  # higher priority first
    ([("a", 5), ("b", 10), ("c", 5), ("d", 10)], ["b", "d", "a", "c"]),  # FIFO within a priority
    ([("a", 10), ("b", 0), ("c", 3)], ["a", "c", "b"]),
])
def test_priority_orders_callers(joins, order) -> None:
    qs = system()
    positions = [qs.join("q", uid, prio, T0 + i) for i, (uid, prio) in enumerate(joins)]
    assert [c.uniqueid for c in qs.queue("q").callers] == order
    # QueueCallerJoin Position is where the caller went; Count is the line after the join
    assert [count for _, count in positions] == list(range(1, len(joins) + 1))
    assert positions[-1][0] == order.index(joins[-1][0]) + 1


def test_priority_caller_is_served_first_when_an_agent_frees_up() -> None:
    qs = system(Strategy.RINGALL)
    qs.pause(A, True, now=T0)
    qs.pause(B, True, now=T0)
    qs.pause(C, True, now=T0)
    qs.join("q", "low", 0, T0)
    assert qs.join("q", "high", 10, T0 + 1) == (1, 2)
    assert qs.ring_decisions(T0 + 2) == []
    qs.pause(B, False, now=T0 + 3)
    rings = qs.ring_decisions(T0 + 3)
    assert [(r.uniqueid, r.interfaces) for r in rings] == [("high", (B,))]


@pytest.mark.parametrize("strategy, penalties, busy, expected", [
    (Strategy.RINGALL, (0, 1, 1), (), (A,)),  # only the best tier rings
    (Strategy.RINGALL, (1, 0, 0), (), (B, C)),
    (Strategy.RINGALL, (0, 1, 1), (A,), (B, C)),  # next tier when the best is busy
    (Strategy.RRMEMORY, (2, 1, 2), (), (B,)),
    (Strategy.LEASTRECENT, (1, 1, 0), (), (C,)),
    (Strategy.FEWESTCALLS, (0, 2, 1), (A,), (C,)),
])
def test_penalty_tiers(strategy, penalties, busy, expected) -> None:
    qs = system(strategy, penalties=penalties)
    for interface in busy:
        qs.devices[interface].in_call = True
    qs.join("q", "c1", 0, T0)
    assert qs.ring_decisions(T0)[0].interfaces == expected


def test_paused_members_are_skipped_and_reason_kept() -> None:
    qs = system(Strategy.RINGALL)
    targets = qs.pause(A, True, reason="lunch", now=T0)
    assert [(q.name, m.paused, m.paused_reason, m.last_pause) for q, m in targets] == [("q", True, "lunch", int(T0))]
    qs.join("q", "c1", 0, T0)
    assert qs.ring_decisions(T0)[0].interfaces == (B, C)
    with pytest.raises(QueueError, match="Interface not found"):
        qs.pause("PJSIP/9999", True, now=T0)


def test_everyone_paused_nobody_rings() -> None:
    qs = system()
    for i in (A, B, C):
        qs.pause(i, True, now=T0)
    qs.join("q", "c1", 0, T0)
    assert qs.ring_decisions(T0) == []
    assert qs.next_wakeup(T0) is None


def test_wrapup_time_keeps_a_member_out_until_it_ends() -> None:
    qs = system(Strategy.FEWESTCALLS, wrapuptime=30)
    qs.pause(B, True, now=T0)
    qs.pause(C, True, now=T0)
    served = serve(qs, "c1", T0, talk=60)  # A ends its call at T0 + 61
    assert served == A
    qs.join("q", "c2", 0, T0 + 70)
    assert qs.ring_decisions(T0 + 70) == []  # still in wrap-up
    assert qs.next_wakeup(T0 + 70) == T0 + 61 + 30
    assert qs.ring_decisions(T0 + 91)[0].interfaces == (A,)


def test_ring_timeout_then_retry_moves_on_with_rrmemory() -> None:
    qs = system(Strategy.RRMEMORY, timeout=15, retry=2)
    qs.join("q", "c1", 0, T0)
    assert qs.ring_decisions(T0)[0].interfaces == (A,)
    assert qs.member_status(A) == DEVICE_RINGING
    assert qs.ring_timeout("q", "c1", T0 + 15) == (A,)
    assert qs.member_status(A) == DEVICE_NOT_INUSE
    assert qs.ring_decisions(T0 + 16) == []  # waiting `retry` seconds
    assert qs.next_wakeup(T0 + 15) == T0 + 17
    assert qs.ring_decisions(T0 + 17)[0].interfaces == (B,)
    connected = qs.answer("q", "c1", B, T0 + 20)
    assert (connected.holdtime, connected.ringtime, connected.position) == (20, 3, 1)


def test_answer_by_one_member_cancels_the_others_of_ringall() -> None:
    qs = system(Strategy.RINGALL)
    qs.join("q", "c1", 0, T0)
    qs.ring_decisions(T0)
    connected = qs.answer("q", "c1", B, T0 + 2)
    assert set(connected.cancelled) == {A, C}
    assert qs.member_status(B) == DEVICE_INUSE
    assert qs.member_status(A) == DEVICE_NOT_INUSE and qs.member_status(C) == DEVICE_NOT_INUSE
    assert qs.queue("q").callers == []


def test_local_members_show_in_use_while_ringing_like_the_captures() -> None:
    qs = QueueSystem([QueueConfig("q", members=(MemberConfig("Local/1001@agents/n", "Li Na"),))], T0)
    qs.join("q", "c1", 0, T0)
    qs.ring_decisions(T0)
    assert qs.member_status("Local/1001@agents/n") == DEVICE_INUSE


def test_abandon_reports_positions_and_holdtime_and_stops_the_ring() -> None:
    qs = system(Strategy.RINGALL)
    qs.pause(B, True, now=T0)
    qs.pause(C, True, now=T0)
    qs.join("q", "first", 0, T0)
    qs.join("q", "second", 0, T0 + 1)
    qs.ring_decisions(T0 + 1)  # "first" rings A
    left = qs.abandon("q", "first", T0 + 8)
    assert (left.position, left.original_position, left.holdtime, left.count, left.cancelled) == (1, 1, 8, 1, (A,))
    assert qs.queue("q").abandoned == 1
    assert qs.member_status(A) == DEVICE_NOT_INUSE
    assert qs.ring_decisions(T0 + 8)[0].uniqueid == "second"


def test_a_member_in_a_call_in_one_queue_is_busy_in_all() -> None:
    qs = QueueSystem([
        QueueConfig("q1", Strategy.RINGALL, members=(MemberConfig(A, "Ann"),)),
        QueueConfig("q2", Strategy.RINGALL, members=(MemberConfig(A, "Ann"), MemberConfig(B, "Bob"))),
    ], T0)
    qs.join("q1", "c1", 0, T0)
    qs.ring_decisions(T0)
    qs.answer("q1", "c1", A, T0 + 1)
    qs.join("q2", "c2", 0, T0 + 2)
    assert qs.ring_decisions(T0 + 2)[0].interfaces == (B,)


def test_dynamic_members_and_errors_as_asterisk_words_them() -> None:
    qs = system()
    member = qs.add_member("q", "PJSIP/2001", "Dyn", penalty=1, paused=True, reason="login", now=T0)
    assert (member.dynamic, member.paused, member.paused_reason, member.penalty) == (True, True, "login", 1)
    with pytest.raises(QueueError, match="^Unable to add interface: Already there$"):
        qs.add_member("q", "PJSIP/2001", "Dyn", now=T0)
    with pytest.raises(QueueError, match="^Unable to add interface to queue: No such queue$"):
        qs.add_member("nope", "PJSIP/2001", "Dyn", now=T0)
    assert [m.penalty for _, m in qs.set_penalty("PJSIP/2001", 3)] == [3]
    qs.remove_member("q", "PJSIP/2001")
    with pytest.raises(QueueError, match="^Unable to remove interface: Not there$"):
        qs.remove_member("q", "PJSIP/2001")


def test_stats_follow_app_queue_running_averages() -> None:
    qs = system()
    serve(qs, "c1", T0, talk=40)  # hold 1, talk 40
    q = qs.queue("q")
    assert (q.completed, q.holdtime, q.talktime) == (1, 0, 10)  # (3*0 + 1)//4, (3*0 + 40)//4
    assert q.member(A).calls_taken == 1 and q.member(A).last_call == int(T0 + 41)
