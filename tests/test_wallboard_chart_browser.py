"""The wallboard's intraday chart and tile colours in headless Chromium, drawn from calls seeded in the database
(read at start as after a restart), with thresholds from the [wallboard] settings. The browser runs in UTC while
the call center is in Asia/Shanghai: the chart's intervals are Shanghai half hours."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from cti.db.tables import calls
from cti.web.wallboard import WALLBOARD
from test_wallboard_browser import browser, db_url  # noqa: F401  (fixtures: Chromium, SQLite)
from test_web_support import PASSWORD, Web, web  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser
TZ = ZoneInfo("Asia/Shanghai")
# (queue, local end time, outcome): 09:00 three calls, 09:30 two, 10:30 five, 11:00 five
CALLS = [("mobile", "09:05", "answered"), ("mobile", "09:20", "answered"), ("mobile", "09:25", "abandoned"),
         ("mobile", "09:35", "answered"), ("mobile", "09:50", "answered"),
         ("appliances", "10:31", "answered"), ("appliances", "10:40", "abandoned"), ("appliances", "10:45", "abandoned"),
         ("appliances", "10:50", "timeout"), ("appliances", "11:01", "answered"),
         *[("complaints", f"11:0{i}", "answered") for i in range(2, 6)], ("complaints", "10:55", "answered")]


@pytest.fixture
def settings(settings):  # noqa: F811  thresholds of the test: amber within 15 points of a 70% answer rate
    return settings.replace("wallboard", answer_rate=0.7, warn_margin=0.15, service_level=-1.0, abandon_rate=0.25)


async def seed_calls(web: Web) -> float:
    """Today 11:10 in Shanghai (the board's clock); the calls of CALLS ended earlier today."""
    day = datetime.now(TZ).date()
    now = datetime(day.year, day.month, day.day, 11, 10, tzinfo=TZ)
    async with web.daemon.engine.begin() as conn:
        for i, (queue, hhmm, outcome) in enumerate(CALLS):
            h, m = map(int, hhmm.split(":"))
            end = datetime(day.year, day.month, day.day, h, m, tzinfo=TZ).astimezone(timezone.utc)
            answered = outcome == "answered"
            await conn.execute(insert(calls).values(
                server="default", uniqueid=f"chart.{i}", queue=queue, started_at=end - timedelta(seconds=90),
                queued_at=end - timedelta(seconds=80), answered_at=end - timedelta(seconds=60) if answered else None,
                ended_at=end, outcome=outcome, wait_s=20.0 if answered else 80.0, talk_s=60.0 if answered else None))
    board = web.daemon.web.app[WALLBOARD]
    board.clock = lambda: now.timestamp()
    await board.load_today()  # as at start-up
    return now.timestamp()


async def test_the_chart_draws_todays_calls_per_half_hour_against_the_forecast_and_the_80_line(web: Web, browser):  # noqa: F811
    await seed_calls(web)
    context = await browser.new_context(viewport={"width": 1400, "height": 1100}, timezone_id="UTC", locale="en-GB")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(web.base + "/wallboard")
    await page.fill("#login-username", "sue")
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_selector("#intraday-chart svg")

    async def value(kind: str, start: str) -> float:
        return float(await page.get_attribute(f'#intraday-chart [data-kind="{kind}"][data-start="{start}"]', "data-value"))

    expected = {"09:00": (3, 2, 1), "09:30": (2, 2, 0), "10:00": (0, 0, 0), "10:30": (5, 2, 2), "11:00": (5, 5, 0)}
    for start, (offered, answered, abandoned) in expected.items():
        assert (await value("offered", start), await value("answered", start), await value("abandoned", start)) == \
            (offered, answered, abandoned), start
    # bar heights are proportional to the counts
    h = {s: float(await page.get_attribute(f'[data-kind="offered"][data-start="{s}"]', "height")) for s in ("09:00", "10:30")}
    assert h["10:30"] == pytest.approx(h["09:00"] * 5 / 3, abs=0.2)
    # answer rate points: 2/3 at 09:00, 2/5 at 10:30, none at 10:00 (nothing offered)
    assert await value("answer_rate", "09:00") == pytest.approx(2 / 3)
    assert await value("answer_rate", "10:30") == pytest.approx(0.4)
    assert await page.query_selector('[data-kind="answer_rate"][data-start="10:00"]') is None
    # the staffing plan's forecast (seed day, 2,000 calls: 08:00-20:30) and the answer-rate target line
    assert await value("forecast", "08:00") == pytest.approx(53.2, abs=0.1)
    assert await page.query_selector('[data-kind="forecast"][data-start="20:00"]') is not None
    target = await page.query_selector('#intraday-chart line[data-kind="target"]')
    assert target is not None and float(await target.get_attribute("data-value")) == 0.7  # [wallboard] answer_rate
    # where 0.7 sits on the 0-100% axis: the same height as an answer-rate point of 0.7 would
    y_target = float(await target.get_attribute("y1"))
    y_two_thirds = float(await page.get_attribute('[data-kind="answer_rate"][data-start="09:00"]', "cy"))
    y_full = float(await page.get_attribute('[data-kind="answer_rate"][data-start="11:00"]', "cy"))
    assert y_full < y_target < y_two_thirds
    assert (y_two_thirds - y_full) / (y_target - y_full) == pytest.approx((1 - 2 / 3) / (1 - 0.7), rel=0.02)
    assert "Today per 30 minutes" in await page.inner_text("#intraday-chart")

    # tiles coloured by the thresholds: complaints 100% green, mobile 80% (within 15 points of 70%) and abandon
    # 20% (within 15 of 25%) amber, appliances 40% red; all queues 11/15 = 73% amber (red with the 80% default)
    levels = {q: await page.get_attribute(f'.tile[data-queue="{q}"]', "data-level")
              for q in ("*", "mobile", "appliances", "complaints")}
    assert levels == {"*": "amber", "mobile": "amber", "appliances": "red", "complaints": "green"}
    colours = {q: await page.eval_on_selector(f'.tile[data-queue="{q}"]', "e => getComputedStyle(e).backgroundColor")
               for q in ("mobile", "appliances", "complaints")}
    assert len(set(colours.values())) == 3, colours
    assert colours["appliances"] == "rgb(61, 28, 32)" and colours["mobile"] == "rgb(58, 49, 22)"
    assert not errors, errors
    await context.close()
