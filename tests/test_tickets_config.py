"""The [tickets] config section maps to the SLA policy, the notifier and the scheduler."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cti.tickets.config import TicketsConfig, build_scheduler

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def test_defaults_are_a_24_hour_sla():
    policy = TicketsConfig().policy()
    assert policy.deadline("complaint", T0) == T0 + timedelta(hours=24)
    assert policy.question_deadline(T0) == T0 + timedelta(hours=24)


def test_per_category_hours_from_strings_as_the_config_loader_gives_them():
    policy = TicketsConfig(sla_categories={"Billing": "48", "safety": "4.5"}).policy()
    assert policy.deadline("billing", T0) == T0 + timedelta(hours=48)
    assert policy.deadline("safety", T0) == T0 + timedelta(hours=4.5)


@pytest.mark.parametrize("cfg,key", [
    (TicketsConfig(sla_categories={"x": "soon"}), "tickets.sla_categories.x"),
    (TicketsConfig(sla_hours=0), "default_hours"),
    (TicketsConfig(smtp_port=0), "tickets.smtp_port"),
    (TicketsConfig(scan_interval_s=0), "tickets.scan_interval_s"),
])
def test_bad_values_name_their_key(cfg, key):
    with pytest.raises(ValueError, match=key):
        build_scheduler(cfg, None, None)


async def test_build_scheduler():
    s = build_scheduler(TicketsConfig(scan_interval_s=5, smtp_host="127.0.0.1"), None, None)
    assert s.interval_s == 5 and s.notifier.smtp.host == "127.0.0.1"
    await s.stop()
