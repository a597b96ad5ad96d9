"""Reports on a hand-computed fixture: every statistic at 15/30/60 minutes, per day, queue and agent."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from cti.stats.reports import (
    CallRow,
    agent_report,
    daily_report,
    find_peaks,
    interval_report,
    load_calls,
    queue_report,
    to_csv,
)

UTC = timezone.utc


def t(hms: str, day: int = 2) -> datetime:
    h, m, s = (int(x) for x in hms.split(":"))
    return datetime(2026, 11, day, h, m, s, tzinfo=UTC)


def call(queued: str, outcome: str, wait: float | None, talk: float | None = None, agent: int | None = None, queue: str | None = "appliances") -> CallRow:
    q = t(queued)
    answered = q + timedelta(seconds=wait) if outcome in ("answered", "transferred") and wait is not None else None
    return CallRow(
        started_at=q - timedelta(seconds=15),
        queued_at=q,
        answered_at=answered,
        ended_at=(answered + timedelta(seconds=talk)) if answered and talk else q + timedelta(seconds=wait or 0),
        wait_s=wait,
        talk_s=talk,
        outcome=outcome,
        agent_id=agent,
        queue=queue,
    )


#: The fixture. Hand-computed totals are in each test; times are UTC on Monday 2 November 2026.
ROWS = [
    call("09:00:05", "answered", 10, 300, 1),  # talk 09:00:15-09:05:15
    call("09:10:00", "answered", 30, 600, 2),  # talk 09:10:30-09:20:30, answered after 20 s
    call("09:20:00", "abandoned", 40),
    call("09:25:00", "ivr_hangup", None, queue=None),
    call("09:29:00", "answered", 20, 120, 1),  # exactly 20 s: within; talk 09:29:20-09:31:20 spans two intervals
    call("09:35:00", "transferred", 5, 240, 3, queue="complaints"),  # talk 09:35:05-09:39:05
    call("09:40:00", "timeout", 300, queue="complaints"),
    call("09:45:00", "answered", 25, 60, 2, queue="complaints"),  # talk 09:45:25-09:46:25
]


def test_thirty_minute_intervals() -> None:
    first, second = interval_report(ROWS, UTC, 30)
    assert (first.start, first.end) == (t("09:00:00"), t("09:30:00"))
    assert (first.offered, first.answered, first.abandoned, first.timeout, first.ivr_hangup) == (4, 3, 1, 0, 1)
    assert first.answered_within == 2  # waits 10 and 20 (inclusive), not 30
    assert first.answer_rate == 0.75 and first.abandon_rate == 0.25 and first.service_level == 0.5
    assert first.aht_s == pytest.approx((300 + 600 + 120) / 3)
    assert first.asa_s == pytest.approx((10 + 30 + 20) / 3)
    assert first.busy_s == pytest.approx(300 + 600 + 40)  # 40 s of the 09:29:20 call fall before 09:30
    assert first.staffed_agents == 2
    assert first.occupancy == pytest.approx(940 / (2 * 1800))
    assert (second.offered, second.answered, second.abandoned, second.timeout, second.ivr_hangup) == (3, 2, 0, 1, 0)
    assert second.answered_within == 1
    assert second.answer_rate == pytest.approx(2 / 3) and second.service_level == pytest.approx(1 / 3)
    assert second.aht_s == 150 and second.asa_s == 15
    assert second.busy_s == pytest.approx(80 + 240 + 60)
    assert second.staffed_agents == 3  # agent 1 finishing the 09:29 call, agents 3 and 2
    assert second.occupancy == pytest.approx(380 / (3 * 1800))


def test_fifteen_and_sixty_minute_intervals() -> None:
    q = interval_report(ROWS, UTC, 15)
    assert [(s.start.strftime("%H:%M"), s.offered, s.answered, s.abandoned, s.timeout, s.answered_within) for s in q] == [
        ("09:00", 2, 2, 0, 0, 1),
        ("09:15", 2, 1, 1, 0, 1),
        ("09:30", 2, 1, 0, 1, 1),
        ("09:45", 1, 1, 0, 0, 0),
    ]
    assert [s.busy_s for s in q] == pytest.approx([300 + 270, 330 + 40, 80 + 240, 60])
    (hour,) = interval_report(ROWS, UTC, 60)
    assert (hour.offered, hour.answered, hour.abandoned, hour.timeout, hour.ivr_hangup, hour.answered_within) == (7, 5, 1, 1, 1, 3)
    assert hour.answer_rate == pytest.approx(5 / 7) and hour.service_level == pytest.approx(3 / 7)
    assert hour.abandon_rate == pytest.approx(1 / 7)
    assert hour.aht_s == pytest.approx(1320 / 5) and hour.asa_s == pytest.approx(90 / 5)
    assert hour.occupancy == pytest.approx(1320 / (3 * 3600))


def test_service_level_threshold_is_configurable() -> None:
    (hour,) = interval_report(ROWS, UTC, 60, sl_seconds=30)
    assert hour.answered_within == 5 and hour.service_level == pytest.approx(5 / 7)
    (hour,) = interval_report(ROWS, UTC, 60, sl_seconds=5)
    assert hour.answered_within == 1


def test_staffed_agents_override_the_occupancy_proxy() -> None:
    first = interval_report(ROWS, UTC, 30, staffed={t("09:00:00"): 4})[0]
    assert first.staffed_agents == 4 and first.occupancy == pytest.approx(940 / (4 * 1800))


def test_per_queue_intervals() -> None:
    lines = {(s.start.strftime("%H:%M"), s.queue): s for s in interval_report(ROWS, UTC, 30, by_queue=True)}
    assert set(lines) == {("09:00", ""), ("09:00", "appliances"), ("09:30", "appliances"), ("09:30", "complaints")}
    assert lines[("09:00", "")].ivr_hangup == 1 and lines[("09:00", "")].offered == 0
    assert lines[("09:00", "")].answer_rate is None
    app = lines[("09:00", "appliances")]
    assert (app.offered, app.answered, app.abandoned, app.answered_within) == (4, 3, 1, 2)
    tail = lines[("09:30", "appliances")]  # no new call, only the end of the 09:29 conversation
    assert tail.offered == 0 and tail.busy_s == pytest.approx(80) and tail.occupancy == pytest.approx(80 / 1800)
    comp = lines[("09:30", "complaints")]
    assert (comp.offered, comp.answered, comp.timeout, comp.answered_within) == (3, 2, 1, 1)


def test_queue_report() -> None:
    lines = {s.queue: s for s in queue_report(ROWS)}
    assert (lines["appliances"].offered, lines["appliances"].answered, lines["appliances"].abandoned) == (4, 3, 1)
    assert lines["appliances"].aht_s == pytest.approx(340)
    assert (lines["complaints"].offered, lines["complaints"].answered, lines["complaints"].timeout) == (3, 2, 1)
    assert lines["complaints"].service_level == pytest.approx(1 / 3)
    assert lines[""].ivr_hangup == 1


def test_daily_report_cuts_days_in_the_call_centers_zone() -> None:
    late = call("16:30:00", "answered", 12, 100, 4)  # 00:30 on 3 November in Shanghai
    days = daily_report([*ROWS, late], ZoneInfo("Asia/Shanghai"))
    assert [(d.start.date().isoformat(), d.offered, d.answered) for d in days] == [("2026-11-02", 7, 5), ("2026-11-03", 1, 1)]
    assert days[0].start == datetime(2026, 11, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
    (utc_day,) = daily_report([*ROWS, late], UTC)
    assert utc_day.offered == 8 and utc_day.answered_within == 4


def test_intervals_in_local_time() -> None:
    first = interval_report(ROWS, ZoneInfo("Asia/Shanghai"), 30)[0]
    assert first.start.hour == 17 and first.start.minute == 0 and first.offered == 4


def test_agent_report() -> None:
    lines = {s.agent_id: s for s in agent_report(ROWS, UTC, 30)}
    assert set(lines) == {1, 2, 3}
    assert (lines[1].answered, lines[1].aht_s, lines[1].busy_s) == (2, 210, 420)
    assert lines[1].occupancy == pytest.approx(420 / 3600)  # active in 09:00 and 09:30
    assert lines[2].asa_s == pytest.approx(27.5) and lines[2].occupancy == pytest.approx(660 / 3600)
    assert lines[3].occupancy == pytest.approx(240 / 1800)


def test_talk_time_from_timestamps_when_talk_s_is_missing() -> None:
    r = CallRow(started_at=t("10:00:00"), queued_at=t("10:00:10"), answered_at=t("10:00:40"), ended_at=t("10:03:40"), outcome="answered", agent_id=9)
    (line,) = interval_report([r], UTC, 30)
    assert line.aht_s == 180 and line.asa_s == 30 and line.busy_s == 180 and line.answered_within == 0


def test_peaks() -> None:
    counts = [2, 2, 6, 7, 2, 2, 6, 2]  # mean 3.625; threshold 1.25 x mean = 4.53
    rows = [call(f"{8 + i // 2:02d}:{30 * (i % 2):02d}:00", "answered", 5, 60, 1) for i, n in enumerate(counts) for _ in range(n)]
    peaks = find_peaks(interval_report(rows, UTC, 30))
    assert [(p.start.strftime("%H:%M"), p.end.strftime("%H:%M"), p.offered, p.busiest.strftime("%H:%M"), p.busiest_offered) for p in peaks] == [
        ("09:00", "10:00", 13, "09:30", 7),
        ("11:00", "11:30", 6, "11:00", 6),
    ]
    assert find_peaks([]) == []


def test_csv_export() -> None:
    text = to_csv(interval_report(ROWS, UTC, 60))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1
    assert rows[0]["start"] == "2026-11-02T09:00:00+00:00"
    assert rows[0]["offered"] == "7" and rows[0]["answered"] == "5" and rows[0]["aht_s"] == "264"
    assert rows[0]["service_level"] == "0.428571"
    empty = to_csv(interval_report([ROWS[3]], UTC, 60))
    assert list(csv.DictReader(io.StringIO(empty)))[0]["answer_rate"] == ""


async def test_loader_reads_the_calls_table(engine) -> None:
    from cti.db.tables import calls

    async with engine.begin() as conn:
        await conn.execute(
            calls.insert(),
            [
                {
                    "uniqueid": f"1762074000.{i}",
                    "queue": r.queue,
                    "started_at": r.started_at,
                    "queued_at": r.queued_at,
                    "answered_at": r.answered_at,
                    "ended_at": r.ended_at,
                    "wait_s": r.wait_s,
                    "talk_s": r.talk_s,
                    "outcome": r.outcome,
                }
                for i, r in enumerate(ROWS)
            ],
        )
    rows = await load_calls(engine, t("00:00:00"), t("00:00:00", day=3))
    assert len(rows) == len(ROWS)
    assert await load_calls(engine, t("09:30:00"), t("23:00:00")) != []
    assert len(await load_calls(engine, t("00:00:00"), t("00:00:00", day=3), queue="complaints")) == 3
    first, second = interval_report(rows, UTC, 30)
    assert (first.offered, first.answered, first.answered_within, first.busy_s) == (4, 3, 2, pytest.approx(940))
    assert (second.offered, second.answered, second.timeout) == (3, 2, 1)
    assert first.start == t("09:00:00")
