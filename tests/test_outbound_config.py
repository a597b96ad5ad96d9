"""The ``[outbound]`` section of cti.toml (Settings.outbound): the contact policy, rules and credit shares
the daemon builds its OutboundService from; bad values stop start-up with a ConfigError naming the key;
``cti outbound ... --policy FILE`` overrides cti.toml key by key."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from click.testing import CliRunner

from cti.cli import main
from cti.config import ConfigError, load_settings
from cti.outbound.cli import load_outbound
from cti.outbound.policy import Cap, ContactPolicy
from cti.outbound.rules import DEFAULT_RULES


def _load(tmp_path, text: str, env: dict[str, str] | None = None):
    path = tmp_path / "cti.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, env=env or {})


def test_defaults_are_the_packages_defaults() -> None:
    setup = load_settings(None, env={}).outbound.build()
    assert setup.policy == ContactPolicy()
    assert setup.rules == DEFAULT_RULES and setup.context == "cti-outbound" and setup.originate_timeout_ms == 30000


def test_a_full_section(tmp_path) -> None:
    s = _load(tmp_path, """
[outbound]
caps = [{count = 2, days = 7}, {count = 4, days = 30}]
caps_by_reason = {"customer asked for a call back" = [{count = 3, days = 1}]}
center_timezone = "Asia/Urumqi"
center_hours = {"0" = "09:00-18:00", "5" = "10:00-16:00"}
customer_timezone = "Asia/Hong_Kong"
customer_hours = {"0" = "10:00-20:00"}
max_attempts = 4
retry_backoff_minutes = [30, 90.5]
credits = {dealer_share = 0.5, finder_share = 0.25, expert_share = 0.4}
context = "my-outbound"
originate_timeout_s = 20
sweep_interval_s = 10

[[outbound.rules]]
name = "delivery"
kind = "machine.delivered"
reason = "delivery check"
delay_hours = 48
window_hours = 24
skill = "appliances"
""")
    setup = s.outbound.build()
    p = setup.policy
    assert p.caps == (Cap(2, 7), Cap(4, 30))
    assert p.caps_by_reason == {"customer asked for a call back": (Cap(3, 1),)}
    assert p.center_timezone == "Asia/Urumqi" and p.center_hours == {"0": "09:00-18:00", "5": "10:00-16:00"}
    assert p.customer_timezone == "Asia/Hong_Kong" and p.customer_hours == {"0": "10:00-20:00"}
    assert p.max_attempts == 4 and p.retry_backoff == (timedelta(minutes=30), timedelta(minutes=90.5))
    [rule] = setup.rules
    assert (rule.name, rule.kind, rule.delay, rule.window, rule.skill) == (
        "delivery", "machine.delivered", timedelta(hours=48), timedelta(hours=24), "appliances")
    assert (setup.credits.dealer_share, setup.credits.finder_share, setup.credits.expert_share) == (0.5, 0.25, 0.4)
    assert (setup.context, setup.originate_timeout_ms, setup.sweep_interval_s) == ("my-outbound", 20000, 10.0)


def test_environment_overrides(tmp_path) -> None:
    s = _load(tmp_path, "[outbound]\nmax_attempts = 5\n", env={
        "CTI_OUTBOUND_CAPS": '[{"count": 2, "days": 14}]',
        "CTI_OUTBOUND_CAPS_BY_REASON": '{"vip": [{"count": 1, "days": 3}]}',
        "CTI_OUTBOUND_CENTER_HOURS": '{"1": "08:00-12:00"}',
        "CTI_OUTBOUND_RETRY_BACKOFF_MINUTES": "60,600",
        "CTI_OUTBOUND_MAX_ATTEMPTS": "2"})
    p = s.outbound.build().policy
    assert p.caps == (Cap(2, 14),) and p.caps_by_reason == {"vip": (Cap(1, 3),)}
    assert p.center_hours == {"1": "08:00-12:00"} and p.max_attempts == 2
    assert p.retry_backoff == (timedelta(hours=1), timedelta(hours=10))


@pytest.mark.parametrize("text, key", [
    ("caps = [{count = 1, days = 7}, {count = 3, days = 0}]", "outbound.caps[1].days"),
    ("caps = [{count = 1}]", "outbound.caps[0].days"),
    ("caps = [{count = 1, days = 7, per = 'week'}]", "outbound.caps[0].per"),
    ("caps = []", "outbound.caps"),
    ("caps = 3", "outbound.caps"),
    ('caps_by_reason = {"vip" = [{count = "x", days = 1}]}', "outbound.caps_by_reason.vip[0].count"),
    ('caps_by_reason = {"vip" = 3}', "outbound.caps_by_reason.vip"),
    ('center_timezone = "Nowhere/City"', "outbound.center_timezone"),
    ('customer_hours = {"0" = "9-5"}', "outbound.customer_hours"),
    ('center_hours = {"8" = "09:00-17:00"}', "outbound.center_hours"),
    ("max_attempts = 0", "outbound.max_attempts"),
    ("retry_backoff_minutes = [60, -5]", "outbound.retry_backoff_minutes[1]"),
    ("retry_backoff_minutes = []", "outbound.retry_backoff_minutes"),
    ("credits = {dealer_share = 0.9, finder_share = 0.2}", "outbound.credits"),
    ("credits = {boss_share = 0.1}", "outbound.credits.boss_share"),
    ("originate_timeout_s = 1", "outbound.originate_timeout_s"),
    ("sweep_interval_s = 0", "outbound.sweep_interval_s"),
    ('context = "bad context"', "outbound.context"),
    ("nonsense = 1", "outbound.nonsense"),
    ('[[outbound.rules]]\nname = "a"\nkind = "k"\nreason = "r"', "outbound.rules[0].delay_hours"),
    ('[[outbound.rules]]\nname = "a"\nkind = "k"\nreason = "r"\ndelay_hours = -1', "outbound.rules[0].delay_hours"),
    ('[[outbound.rules]]\nname = "a"\nkind = "k"\nreason = "r"\ndelay_hours = 1\nwhen = 2', "outbound.rules[0].when"),
    ('[[outbound.rules]]\nname = "a"\nkind = "k"\nreason = "r"\ndelay_hours = 1\n'
     '[[outbound.rules]]\nname = "a"\nkind = "k2"\nreason = "r"\ndelay_hours = 1', "outbound.rules[1].name"),
])
def test_bad_values_name_the_key(tmp_path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, f"[outbound]\n{text}\n")
    assert key in str(err.value), str(err.value)


def test_bad_environment_json_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="CTI_OUTBOUND_CAPS_BY_REASON"):
        load_settings(None, env={"CTI_OUTBOUND_CAPS_BY_REASON": "[1, 2]"})


def test_policy_file_overrides_settings_key_by_key(tmp_path) -> None:
    s = _load(tmp_path, "[outbound]\nmax_attempts = 5\ncaps = [{count = 2, days = 7}]\n")
    policy = tmp_path / "p.toml"
    policy.write_text("[outbound]\nmax_attempts = 2\n", encoding="utf-8")
    p, rules, _ = load_outbound(str(policy), s)
    assert p.max_attempts == 2 and p.caps == (Cap(2, 7),)  # from the file / kept from cti.toml
    assert load_outbound(None, s)[0].max_attempts == 5 and rules == DEFAULT_RULES


async def test_cli_uses_the_config_files_rules_and_the_flag_still_wins(tmp_path, engine, db_url) -> None:
    from sqlalchemy import insert

    from cti.db.engine import sessionmaker
    from cti.db.tables import customers
    from cti.outbound.repository import AddResult  # noqa: F401  (the CLI prints these)

    sm = sessionmaker(engine)
    async with sm() as session, session.begin():
        from datetime import datetime, timezone
        now = datetime.now(timezone.utc)
        cid = (await session.execute(insert(customers).values(family_name="Li", given_name="Wei", created_at=now,
                                                              updated_at=now).returning(customers.c.id))).scalar_one()
    cfg = tmp_path / "cti.toml"
    cfg.write_text('[outbound]\n[[outbound.rules]]\nname = "d"\nkind = "machine.delivered"\nreason = "delivery check"\n'
                   'delay_hours = 1\n', encoding="utf-8")
    flag = tmp_path / "p.toml"
    flag.write_text('[outbound]\n[[outbound.rules]]\nname = "o"\nkind = "other.thing"\nreason = "other"\n'
                    'delay_hours = 1\n', encoding="utf-8")
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, ["--config", str(cfg), *args], env={"CTI_DATABASE_URL": db_url},
                             catch_exceptions=False)

    r = await asyncio.to_thread(run, "outbound", "event", "machine.delivered", "--customer", str(cid), "--key", "1")
    assert r.exit_code == 0 and "created" in r.output, r.output
    r = await asyncio.to_thread(run, "outbound", "event", "machine.delivered", "--customer", str(cid), "--key", "2",
                                "--policy", str(flag))
    assert "no rule for" in r.output, r.output
