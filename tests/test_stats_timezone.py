"""Times are shown in the call center's zone (routing.timezone = Asia/Shanghai), to the second: the CLI's reports
and /api/wallboard here; /api/reports in test_reports_http.py, the reports page (the browser in UTC) in
test_reports_browser.py and the wallboard chart's half hours in test_wallboard_chart_browser.py."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from cti.agents.accounts import add_agent
from cti.db.engine import create_engine
from cti.db.schema import init_schema
from cti.db.tables import calls
from cti.stats.cli import reports
from cti.web.wallboard import WALLBOARD
from test_staffing_cli import invoke
from test_web_support import web  # noqa: F401  (fixture)

TZ = ZoneInfo("Asia/Shanghai")
MICROS = re.compile(r"\d\d:\d\d:\d\d\.\d+")
# 01:30:15.123456 UTC = 09:30:15 in Shanghai
STARTED = datetime(2026, 12, 7, 1, 30, 15, 123456, tzinfo=timezone.utc)


def seed(db_url: str) -> None:
    async def go() -> None:
        engine = create_engine(db_url)
        try:
            await init_schema(engine)
            async with engine.begin() as conn:
                agent = await add_agent(conn, "tz.agent", "x", display_name="TZ", role="agent")
                await conn.execute(insert(calls).values(
                    server="default", uniqueid="tz.1", queue="mobile", started_at=STARTED, queued_at=STARTED,
                    answered_at=STARTED.replace(second=25), ended_at=STARTED.replace(minute=33), outcome="answered",
                    wait_s=10.0, talk_s=170.0, agent_id=agent))
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_cli_reports_show_local_times_without_microseconds(db_url: str) -> None:
    seed(db_url)
    env = {"CTI_DATABASE_URL": db_url, "CTI_ROUTING_TIMEZONE": "Asia/Shanghai"}
    for command in ("queues", "agents", "intervals", "daily"):
        r = invoke(reports, [command, "--from", "2026-12-07"], env)
        assert r.exit_code == 0, r.output
        (row,) = list(csv.DictReader(io.StringIO(r.output)))
        assert row["start"].endswith("+08:00") and row["end"].endswith("+08:00"), (command, row["start"])
        assert not MICROS.search(r.output), (command, r.output)
    r = invoke(reports, ["queues", "--from", "2026-12-07"], env)
    (row,) = list(csv.DictReader(io.StringIO(r.output)))
    assert row["start"] == "2026-12-07T09:30:15+08:00"


async def test_the_wallboard_api_gives_its_times_in_the_call_centers_zone(web):  # noqa: F811
    import json

    board = web.daemon.web.app[WALLBOARD]
    board.clock = lambda: STARTED.timestamp()  # 09:30:15.123456 in Shanghai
    async with web.http.get(web.base + "/api/wallboard", headers=web.auth(await web.login("sue"))) as r:
        text = await r.text()
    data = json.loads(text)
    assert data["timezone"] == "Asia/Shanghai"
    assert data["at_local"] == "2026-12-07T09:30:15+08:00" and data["day_start_local"] == "2026-12-07T00:00:00+08:00"
    assert not MICROS.search(text)
