"""The wallboard's numbers (cti.stats.live), on hand-computed fixtures; pure, no clock."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

import cti.ami  # noqa: F401  (cti.calls.live needs cti.ami imported first)
from cti.ami import events as ev
from cti.calls.live import LiveState
from cti.stats.live import EndedCall, Targets, TodaysCalls, local_midnight, period_figures, red_flags, wallboard
from cti.stats.reports import CallRow

SH = ZoneInfo("Asia/Shanghai")
# 2026-11-23 10:00 in Shanghai
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SH).timestamp()
MIDNIGHT = datetime(2026, 11, 23, 0, 0, tzinfo=SH).timestamp()


def call(minutes_ago: float, queue: str, outcome: str, wait: float | None, talk: float | None = None) -> EndedCall:
    return EndedCall(NOW - minutes_ago * 60, queue, outcome, wait, talk)


#: 10 calls today: 6 of them in the last hour.
CALLS = [
    # earlier today (more than an hour ago)
    call(300, "appliances", "answered", 5, 300),
    call(240, "appliances", "answered", 40, 500),
    call(200, "complaints", "abandoned", 90),
    call(90, "complaints", "answered", 10, 100),
    # last hour
    call(50, "appliances", "answered", 15, 200),
    call(40, "appliances", "answered", 25, 400),
    call(30, "appliances", "abandoned", 60),
    call(20, "complaints", "transferred", 8, 60),
    call(10, "complaints", "timeout", 300),
    call(5, "appliances", "answered", 20, 600),
]


def test_period_figures_follow_the_reports_definitions():
    p = period_figures(CALLS, sl_seconds=20)
    assert (p.offered, p.answered, p.abandoned, p.timeout) == (10, 7, 2, 1)
    # answered within 20 s: waits 5, 10, 15, 8, 20 (20 counts: "within")
    assert p.answered_within == 5
    assert p.answer_rate == pytest.approx(0.7)
    assert p.service_level == pytest.approx(0.5)
    assert p.abandon_rate == pytest.approx(0.2)
    assert p.avg_wait_s == pytest.approx((5 + 40 + 90 + 10 + 15 + 25 + 60 + 8 + 300 + 20) / 10)
    assert p.asa_s == pytest.approx((5 + 40 + 10 + 15 + 25 + 8 + 20) / 7)
    assert p.aht_s == pytest.approx((300 + 500 + 100 + 200 + 400 + 60 + 600) / 7)


def test_no_calls_no_rates_and_no_division_by_zero():
    p = period_figures([], 20)
    assert p.offered == 0 and p.answer_rate is None and p.service_level is None and p.aht_s is None


def test_todays_calls_drop_yesterday_and_keep_order():
    today = TodaysCalls([call(1, "a", "answered", 1, 1), call(2000, "a", "answered", 1, 1)])
    today.add(call(3, "a", "abandoned", 4))  # arrives late: kept in order
    today.prune(MIDNIGHT)
    assert [round((NOW - c.ended_at) / 60) for c in today.calls] == [3, 1]
    assert local_midnight(NOW, SH) == MIDNIGHT


def test_ended_call_from_bus_payload_and_from_a_row():
    assert EndedCall.from_payload({"outcome": "ivr_hangup", "ended_at": NOW}) is None
    c = EndedCall.from_payload({"outcome": "answered", "queue": "mobile", "ended_at": NOW, "wait_s": 12, "talk_s": 30})
    assert c == EndedCall(NOW, "mobile", "answered", 12.0, 30.0)
    row = CallRow(started_at=datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc), outcome="answered", queue="mobile",
                  queued_at=datetime(2026, 11, 23, 1, 0, 10, tzinfo=timezone.utc),
                  answered_at=datetime(2026, 11, 23, 1, 0, 40, tzinfo=timezone.utc),
                  ended_at=datetime(2026, 11, 23, 1, 5, 40, tzinfo=timezone.utc))
    c = EndedCall.from_row(row)
    assert c is not None and (c.wait_s, c.talk_s) == (30.0, 300.0)
    assert c.ended_at == datetime(2026, 11, 23, 1, 5, 40, tzinfo=timezone.utc).timestamp()


def test_red_flags_against_targets():
    t = Targets(sl_seconds=20, answer_rate=0.8, service_level=0.8, abandon_rate=0.1, longest_wait_s=60, min_offered=5)
    p = period_figures(CALLS, 20)
    assert red_flags(2, 100, p, p, t) == ["longest_wait", "today.answer_rate", "today.service_level",
                                          "today.abandon_rate", "last_hour.answer_rate",
                                          "last_hour.service_level", "last_hour.abandon_rate"]
    few = period_figures(CALLS[:3], 20)  # 3 offered < min_offered: rates not judged yet
    assert red_flags(0, 100, few, few, t) == []  # nobody waiting: an old longest wait is no alarm
    good = period_figures([call(1, "a", "answered", 3, 60)] * 10, 20)
    assert red_flags(1, 10, good, good, t) == []


def _snapshot():
    """A LiveState.snapshot()-shaped dict: appliances (2 waiting, 3 members), complaints (0 waiting)."""
    return {
        "queues": [
            {"queue": "appliances", "waiting_count": 2, "longest_wait_s": 100.0,
             "members": [{"state": "ready"}, {"state": "on_call"}, {"state": "paused"}]},
            {"queue": "complaints", "waiting_count": 0, "longest_wait_s": 0.0,
             "members": [{"state": "on_call"}, {"state": "wrap_up"}]},
        ],
        # PJSIP/2002 is in both queues (on_call): once overall
        "agents": [{"state": "ready"}, {"state": "on_call"}, {"state": "paused"}, {"state": "wrap_up"}],
    }


def test_wallboard_per_queue_and_overall():
    board = wallboard(_snapshot(), CALLS + [EndedCall(MIDNIGHT - 10, "appliances", "answered", 1, 1)], NOW, MIDNIGHT,
                      Targets(sl_seconds=20))
    o = board["overall"]
    assert o["queue"] == "*" and o["waiting"] == 2 and o["longest_wait_s"] == 100.0
    assert o["agents"] == {"ready": 1, "ringing": 0, "on_call": 1, "wrap_up": 1, "paused": 1, "unavailable": 0,
                           "logged_in": 4}
    assert o["today"]["offered"] == 10  # yesterday's call is not today's
    hour = o["last_hour"]
    assert (hour["offered"], hour["answered"], hour["abandoned"]) == (6, 3 + 1, 1)
    assert hour["answer_rate"] == pytest.approx(4 / 6)
    assert hour["service_level"] == pytest.approx(3 / 6)  # waits 15, 8, 20 within 20 s; 25 not
    tiles = {t["queue"]: t for t in board["queues"]}
    assert list(tiles) == ["appliances", "complaints"]
    a = tiles["appliances"]
    assert a["waiting"] == 2 and a["agents"]["ready"] == 1 and a["agents"]["logged_in"] == 3
    assert a["today"]["offered"] == 6 and a["today"]["answered"] == 5 and a["today"]["abandoned"] == 1
    assert a["last_hour"]["offered"] == 4 and a["last_hour"]["service_level"] == pytest.approx(2 / 4)
    c = tiles["complaints"]
    assert c["today"]["timeout"] == 1 and c["today"]["answer_rate"] == pytest.approx(2 / 4)
    assert board["targets"]["sl_seconds"] == 20


def test_service_level_threshold_is_configurable():
    ten = wallboard(_snapshot(), CALLS, NOW, MIDNIGHT, Targets(sl_seconds=10))["overall"]["today"]
    sixty = wallboard(_snapshot(), CALLS, NOW, MIDNIGHT, Targets(sl_seconds=60))["overall"]["today"]
    assert ten["answered_within"] == 3  # waits 5, 10, 8
    assert sixty["answered_within"] == 7
    assert sixty["answer_rate"] == ten["answer_rate"]


def test_a_queue_known_only_from_todays_calls_gets_a_tile():
    board = wallboard({"queues": [], "agents": []}, [call(5, "mobile", "answered", 3, 50)], NOW, MIDNIGHT)
    assert [t["queue"] for t in board["queues"]] == ["mobile"]
    assert board["queues"][0]["waiting"] == 0 and board["queues"][0]["agents"]["logged_in"] == 0


def _member(queue: str, iface: str, paused: bool = False) -> ev.QueueMemberAdded:
    return ev.QueueMemberAdded("default", queue, iface, iface, iface, "dynamic", 0, 0, 0, False, 1, paused, "", 0)


def test_the_board_from_a_real_live_state_counts_waiting_and_agents_and_carries_no_caller_data():
    st = LiveState()
    st.apply(_member("appliances", "PJSIP/2001"), NOW - 500)
    st.apply(_member("appliances", "PJSIP/2002", paused=True), NOW - 500)
    st.apply(_member("mobile", "PJSIP/2001"), NOW - 500)
    st.apply(ev.QueueCallerJoin("default", "PJSIP/trunk-1", "1.1", "1.1", "13800138000", "Wang Wei", "appliances",
                                1, 1), NOW - 45)
    st.apply(ev.QueueCallerJoin("default", "PJSIP/trunk-2", "1.2", "1.2", "13900139000", "Li", "appliances", 2, 2),
             NOW - 5)
    board = wallboard(st.snapshot(NOW), [], NOW, MIDNIGHT)
    tiles = {t["queue"]: t for t in board["queues"]}
    assert tiles["appliances"]["waiting"] == 2 and tiles["appliances"]["longest_wait_s"] == pytest.approx(45)
    assert tiles["appliances"]["agents"]["ready"] == 1 and tiles["appliances"]["agents"]["paused"] == 1
    assert tiles["mobile"]["agents"]["ready"] == 1
    # 2001 is in two queues, ready overall (not paused everywhere); 2002 paused in its only queue
    assert board["overall"]["agents"]["ready"] == 1 and board["overall"]["agents"]["paused"] == 1
    assert board["overall"]["waiting"] == 2
    text = repr(board)
    assert "13800138000" not in text and "Wang Wei" not in text and "1.1" not in text
