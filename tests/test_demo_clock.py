"""The demo's simulated day starts at 09:00 in the call center's time zone, whatever the wall clock says
(issue 18 item 7: at 04:47 every follow-up was blocked "outside the call center's outbound hours")."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from cti.config import load_settings
from cti.demo.simclock import day_start
from cti.routing.hours import parse_hours, is_open


def test_a_demo_started_at_0447_runs_its_day_inside_the_outbound_hours():
    s = load_settings(None, env={})
    center = ZoneInfo(s.outbound.center_timezone)
    wall = datetime(2026, 12, 8, 4, 47, tzinfo=ZoneInfo(s.routing.timezone)).timestamp()
    start = datetime.fromtimestamp(day_start("09:00", s.routing.timezone, now=wall), center)
    assert (start.hour, start.minute) == (9, 0) and start.date() == datetime.fromtimestamp(wall, center).date()
    policy = s.outbound.build().policy
    assert is_open(parse_hours(policy.center_hours), start)
    assert not is_open(parse_hours(policy.center_hours), datetime.fromtimestamp(wall, center))  # the old clock
