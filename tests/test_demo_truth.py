"""``cti demo`` tells the truth (issue 18, items 3 and 7), in process against its simulated PBX:

* a complaint created from a demo pop saves (the demo has an org chart), goes to the product line's
  owner, can be answered, and escalates to the owner's manager on the demo's simulated clock; the
  seeded complaint that is close to its deadline escalates during the run, in simulated time;
* every record is on one clock, the simulated one: a call row's talk_s is its answered->ended, its
  timestamps are simulated time (hours away from the wall clock here), the wallboard counts the same
  calls the database holds.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from cti.demo.data import AGENT_PASSWORD, SUPERVISOR_PASSWORD, demo_customers, roster
from cti.demo.world import DemoOptions, DemoRunner, demo_settings, demo_start_epoch

SPEED = 60.0


def _far_from_now() -> str:
    """A day start in busy hours of the line's profile, hours away from the wall clock (Asia/Shanghai):
    simulated != wall time, and calls arrive at once."""
    hour = datetime.now(ZoneInfo("Asia/Shanghai")).hour

    def apart(h: int) -> int:
        return min((h - hour) % 24, (hour - h) % 24)

    return f"{max((9, 14, 18), key=apart):02d}:00"


async def _seed(opts: DemoOptions, team: Any, people: list) -> None:
    from cti.db.engine import create_engine
    from cti.db.schema import init_schema
    from cti.demo.seed import seed_world

    opts.data_dir.mkdir(parents=True, exist_ok=True)
    settings = demo_settings(opts, ami_port=0, agi_port=0)
    engine = create_engine(settings.database.url)
    try:
        await init_schema(engine)
        await seed_world(engine, people, team, now=datetime.fromtimestamp(demo_start_epoch(opts), timezone.utc),
                         policy=settings.tickets.policy())
    finally:
        await engine.dispose()


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[DemoRunner]:
    opts = DemoOptions(tmp_path / "demo", speed=SPEED, calls_per_day=3000, http_port=0, ring_seconds=0.2,
                       talk_seconds=0.5, start_hhmm=_far_from_now())
    team = roster(opts.calls_per_day, aht_s=opts.colleague_aht_s, answer_s=opts.colleague_answer_s)
    people = demo_customers()
    await _seed(opts, team, people)
    runner = DemoRunner(opts, team, people)
    runner.escalations = runner_sub = None  # type: ignore[attr-defined]
    await runner.start()
    assert runner.daemon is not None
    runner.escalations = runner_sub = runner.daemon.bus.subscribe("ticket.escalated")  # type: ignore[attr-defined]
    try:
        yield runner
    finally:
        runner_sub.close()
        await runner.stop()


async def _login(http: aiohttp.ClientSession, url: str, user: str, password: str = AGENT_PASSWORD) -> str:
    async with http.post(url + "api/login", json={"username": user, "password": password}) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["token"]


async def _call(http: aiohttp.ClientSession, method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    async with http.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status, await r.json()


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def test_a_complaint_from_a_demo_pop_saves_and_escalates_in_simulated_time(demo: DemoRunner):
    from cti.tickets.scheduler import TicketScheduler

    daemon = demo.daemon
    assert daemon is not None
    url = demo.console_url
    async with aiohttp.ClientSession() as http:
        token = await _login(http, url, "mobile1")
        async with http.ws_connect(url + "ws", headers={"Authorization": f"Bearer {token}"}) as ws:
            async def known_pop() -> dict:
                while True:
                    m = await ws.receive_json()
                    if m["type"] == "screen_pop" and m.get("customer"):
                        return m
            pop = await asyncio.wait_for(known_pop(), 90)
            # the console's KB panel: the pop suggests articles of the caller's product lines, search finds them
            lines = "&".join(f"product_line={p['product_line']}" for p in pop["customer"]["products"])
            status, suggested = await _call(http, "GET", url + f"api/kb/suggest?{lines}&limit=3", token)
            assert status == 200 and suggested["articles"], suggested
            status, found = await _call(http, "GET", url + "api/kb/search?q=保修", token)
            assert status == 200 and any("保修" in a["title"] for a in found["articles"]), found
            made = []
            for text in ("屏幕闪烁 screen flickers", "充电很慢 slow charging"):
                made.append(await _call(http, "POST", url + "api/tickets/from-call", token, {
                    "server": pop["call"]["server"], "uniqueid": pop["call"]["uniqueid"],
                    "customer_id": pop["customer"]["id"], "category": "complaint", "product_line": "mobile",
                    "description": text}))
        assert [m[0] for m in made] == [201, 201], made
        (_, answered_one), (_, ticket) = made
        sim_now = daemon.clock()
        assert abs(_ts(ticket["created_at"]) - sim_now) < 5 * SPEED  # simulated time, not the wall clock
        assert abs(sim_now - time.time()) > 3600
        status, org = await _call(http, "GET", url + "api/org", token)
        by_id = {p["agent_id"]: p["username"] for p in org["people"]}
        assert by_id[ticket["owner_id"]] == "mobile-owner"

        owner = await _login(http, url, "mobile-owner")
        status, answered = await _call(http, "POST", url + f"api/tickets/{answered_one['id']}/answer", owner,
                                       {"text": "已安排换屏 / a new screen is booked"})
        assert status == 200 and answered["status"] != "open", answered

    # the seeded complaint close to its deadline escalates during the run, on the simulated clock
    msg = await asyncio.wait_for(demo.escalations.get(), 60)  # type: ignore[attr-defined]
    p = msg.payload
    assert p["at"] >= _ts(p["missed_deadline"]) and abs(p["at"] - daemon.clock()) < 10 * SPEED
    # the pop's other complaint, unanswered 24 simulated hours later, goes to the owner's manager
    later = daemon.clock() + daemon.settings.tickets.sla_hours * 3600 + 60
    report = await TicketScheduler(daemon.sessionmaker, None, lambda: later, None,
                                   policy=daemon.settings.tickets.policy()).run_once()
    assert report.tickets.escalated >= 1
    async with aiohttp.ClientSession() as http:
        sup = await _login(http, url, "supervisor", SUPERVISOR_PASSWORD)
        status, shown = await _call(http, "GET", url + f"api/tickets/{ticket['id']}", sup)
    owner_id = shown.get("owner_id", shown.get("ticket", {}).get("owner_id"))
    assert by_id[owner_id] == "mobile-manager", shown


async def test_demo_call_rows_and_the_wallboard_are_on_one_simulated_clock(demo: DemoRunner):
    daemon = demo.daemon
    assert daemon is not None
    db = demo.opts.data_dir / "cti.db"

    def ended_rows() -> list[tuple]:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT started_at, answered_at, ended_at, talk_s, wait_s FROM calls "
                                "WHERE answered_at IS NOT NULL AND ended_at IS NOT NULL").fetchall()

    for _ in range(900):
        if len(ended_rows()) >= 10:
            break
        await asyncio.sleep(0.1)
    rows = ended_rows()
    assert len(rows) >= 10
    wall, sim = time.time(), daemon.clock()
    for started, answered, ended, talk_s, wait_s in rows:
        s, a, e = (datetime.fromisoformat(x).replace(tzinfo=timezone.utc).timestamp() if isinstance(x, str)
                   else x for x in (started, answered, ended))
        assert abs(talk_s - (e - a)) <= 2.0, (talk_s, e - a)  # one clock: AMI's TalkTime and the stamps agree
        assert s <= a <= e <= sim + 1
        assert abs(e - sim) < abs(e - wall)  # simulated time, hours away from the wall clock
    # the wallboard's day and the report of the same span agree (same calls, same clock)
    from cti.stats.reports import load_calls, period_total

    demo._traffic.cancel()  # type: ignore[union-attr]  (no new calls: the figures settle)
    wallboard = daemon.web.wallboard
    for _ in range(300):
        board = wallboard.board()
        start = datetime.fromtimestamp(board["day_start"], timezone.utc)
        end = datetime.fromtimestamp(board["at"] + 1, timezone.utc)
        report = period_total(await load_calls(daemon.engine, start, end), start, end)
        today = board["overall"]["today"]
        if (not daemon.ami.state.snapshot(daemon.clock())["calls"] and today["offered"] == report.offered
                and today["answered"] == report.answered):
            break
        await asyncio.sleep(0.1)
    assert abs(board["at"] - daemon.clock()) < 5 * SPEED and board["at"] - time.time() != 0
    assert today["offered"] == report.offered and today["answered"] == report.answered >= 10, (today, report)
    assert today["aht_s"] == pytest.approx(report.aht_s, abs=1.0) and today["asa_s"] == pytest.approx(report.asa_s, abs=1.0)
    # durations are simulated seconds like the timestamps: 30-60 simulated seconds of talk, not 10 times more
    assert 20 <= report.aht_s <= 120, report
    # outbound calling hours are judged on the same clock
    assert daemon.outbound.now().timestamp() == pytest.approx(daemon.clock(), abs=5 * SPEED)
    assert report.occupancy is None or report.occupancy <= 1.0
