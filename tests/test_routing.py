"""The routing rules as a table of cases: a pure function, no I/O, no sleeps."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from cti.config import RoutingConfig
from cti.routing.rules import CallerFacts, RoutingRules, resolve_route

SH = ZoneInfo("Asia/Shanghai")
OPEN = datetime(2026, 11, 23, 10, 0, tzinfo=SH)  # Monday 10:00
CLOSED = datetime(2026, 11, 23, 21, 0, tzinfo=SH)
RULES = RoutingRules.from_config(RoutingConfig(dids={"400-800-1234": "mobile"}))


def facts(**kw):
    return CallerFacts(customer_id=1, **kw)


@pytest.mark.parametrize(
    "caller, dialed, ivr, now, expect",
    [
        (None, "8005551234", None, OPEN, ("appliances", 0, "ivr", "menu", "zh")),
        (None, "8005551234", "2", OPEN, ("mobile", 0, "queue", "ivr", "zh")),
        (None, "8005551234", "9", OPEN, ("appliances", 0, "queue", "default", "zh")),
        (None, "4008001234", None, OPEN, ("mobile", 0, "queue", "did", "zh")),
        (facts(open_complaint=True), "4008001234", None, OPEN, ("complaints", 10, "queue", "complaint", "zh")),
        (facts(open_complaint=True, vip=True, language="en"), "8005551234", None, OPEN, ("complaints", 15, "queue", "complaint", "en")),
        (facts(product_lines=frozenset({"appliances"})), "8005551234", None, OPEN, ("appliances", 0, "queue", "product", "zh")),
        (facts(product_lines=frozenset({"mobile", "office"})), "8005551234", None, OPEN, ("mobile", 0, "queue", "product", "zh")),
        (facts(product_lines=frozenset({"mobile", "appliances"})), "8005551234", None, OPEN, ("appliances", 0, "ivr", "menu", "zh")),
        (facts(product_lines=frozenset({"office"}), vip=True), "8005551234", None, OPEN, ("appliances", 5, "ivr", "menu", "zh")),
        (facts(vip=True, product_lines=frozenset({"mobile"})), "8005551234", None, OPEN, ("mobile", 5, "queue", "product", "zh")),
        (facts(open_complaint=True), "8005551234", None, CLOSED, ("appliances", 0, "afterhours", "afterhours", "zh")),
        (None, "", None, CLOSED, ("appliances", 0, "afterhours", "afterhours", "zh")),
        (facts(language="xx"), "8005551234", "1", OPEN, ("appliances", 0, "queue", "ivr", "zh")),
    ],
)
def test_route_table(caller, dialed, ivr, now, expect):
    d = resolve_route(caller, dialed, RULES, now, ivr)
    assert (d.queue, d.priority, d.action, d.route, d.language) == expect


def test_open_complaint_jumps_the_queue():
    normal = resolve_route(facts(product_lines=frozenset({"appliances"})), "8005551234", RULES, OPEN)
    complaint = resolve_route(facts(open_complaint=True), "8005551234", RULES, OPEN)
    assert complaint.queue == "complaints" and complaint.priority > normal.priority


def test_business_hours_follow_the_configured_zone():
    # 01:00 UTC is 09:00 in Shanghai: open; 13:00 UTC is 21:00: closed.
    utc = ZoneInfo("UTC")
    assert resolve_route(None, "", RULES, datetime(2026, 11, 23, 1, 0, tzinfo=utc)).action == "ivr"
    assert resolve_route(None, "", RULES, datetime(2026, 11, 23, 13, 0, tzinfo=utc)).action == "afterhours"


def test_a_day_without_hours_is_closed():
    rules = RoutingRules.from_config(RoutingConfig(hours={"0": "08:00-20:30"}))
    tuesday = datetime(2026, 11, 24, 10, 0, tzinfo=SH)
    assert resolve_route(None, "", rules, tuesday).action == "afterhours"


def test_the_open_or_closed_answer_follows_the_clock_across_a_boundary_and_a_rules_change():
    """closed_at() remembers one second; the next second (or other rules) is computed afresh."""
    rules = RoutingRules.from_config(RoutingConfig(hours={"0": "08:00-20:30"}))
    last_open = datetime(2026, 11, 23, 20, 29, 59, 999_000, tzinfo=SH)
    assert resolve_route(None, "", rules, last_open).action == "ivr"
    assert resolve_route(None, "", rules, datetime(2026, 11, 23, 20, 29, 59, 1, tzinfo=SH)).action == "ivr"
    assert resolve_route(None, "", rules, datetime(2026, 11, 23, 20, 30, tzinfo=SH)).action == "afterhours"
    assert resolve_route(None, "", rules, last_open).action == "ivr"  # the clock went back: still right
    closed_monday = RoutingRules.from_config(RoutingConfig(hours={"1": "08:00-20:30"}))
    assert resolve_route(None, "", closed_monday, last_open).action == "afterhours"


@pytest.mark.parametrize("span", ["08:00:30-20:30", "08:00-20:30:00.5", "8-20", "20:30-08:00"])
def test_hours_must_be_whole_minutes_in_order(span: str):
    with pytest.raises(ValueError, match="0: "):
        RoutingRules.from_config(RoutingConfig(hours={"0": span}))


def test_rules_copied_with_other_hours_do_not_share_the_open_or_closed_answer():
    import dataclasses

    from cti.routing.hours import parse_hours

    monday_open = RoutingRules.from_config(RoutingConfig(hours={"0": "08:00-20:30"}))
    assert resolve_route(None, "", monday_open, OPEN).action == "ivr"
    monday_closed = dataclasses.replace(monday_open, hours=parse_hours({"1": "08:00-20:30"}))
    assert resolve_route(None, "", monday_closed, OPEN).action == "afterhours"
