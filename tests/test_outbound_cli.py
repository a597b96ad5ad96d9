"""`cti outbound` against a real database (SQLite + PostgreSQL)."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cti.cli import main
from cti.db.engine import sessionmaker
from cti.db.tables import do_not_call, outbound_followups, outbound_reasons
from outbound_world import seed


@pytest.fixture
async def cli(engine, db_url):
    sm = sessionmaker(engine)
    accounts, customers, phones = await seed(sm)
    runner = CliRunner()

    async def invoke(*args: str):
        return await asyncio.to_thread(runner.invoke, main, list(args), env={"CTI_DATABASE_URL": db_url},
                                       catch_exceptions=False)

    return invoke, sm, customers, phones


async def test_events_campaigns_and_the_do_not_call_list(cli, tmp_path) -> None:
    invoke, sm, customers, phones = cli
    zhang, li, zhao = customers["zhang"], customers["li"], customers["zhao"]
    r = await invoke("outbound", "event", "repair.completed", "--customer", str(zhang), "--key", "RO-1")
    assert r.exit_code == 0 and "created" in r.output, r.output
    r = await invoke("outbound", "event", "repair.completed", "--customer", str(zhang), "--key", "RO-1")
    assert "unchanged (seen)" in r.output
    assert "no rule for" in (await invoke("outbound", "event", "weather.nice", "--customer", str(zhang), "--key", "x")).output
    csv_path = tmp_path / "c.csv"
    csv_path.write_text(f"customer_id,phone\n{zhang},\n,{phones['li'].replace('+86', '')}\n,13999999999\n", encoding="utf-8")
    r = await invoke("outbound", "campaign", "winter-service", "--reason", "winter service offer", "--csv", str(csv_path))
    assert r.exit_code == 0, r.output
    assert "1 follow-ups created, 1 merged" in r.output and "line 4" in r.output
    r = await invoke("outbound", "campaign", "sh-dealer", "--reason", "dealer visit", "--dealer", "D-SH-01")
    assert "0 follow-ups created, 1 merged" in r.output
    async with sm() as s:
        fus = (await s.execute(select(outbound_followups))).all()
        reasons = (await s.execute(select(outbound_reasons.c.reason).where(
            outbound_reasons.c.followup_id == next(f.id for f in fus if f.customer_id == zhang)))).scalars().all()
    assert sorted(f.customer_id for f in fus) == sorted([zhang, li])
    assert reasons == ["repair check", "winter service offer", "dealer visit"]
    r = await invoke("outbound", "list", "--all")
    assert "repair check; winter service offer; dealer visit" in r.output
    r = await invoke("outbound", "dnc", "add", "--customer", str(zhao), "--reason", "asked", "--by", "li.na")
    assert r.exit_code == 0
    r = await invoke("outbound", "dnc", "add", "--number", "not a number", "--by", "x")
    assert r.exit_code != 0
    [entry] = json.loads((await invoke("outbound", "dnc", "list")).output)
    assert (entry["customer_id"], entry["recorded_by"]) == (zhao, "li.na")
    assert (await invoke("outbound", "dnc", "remove", str(entry["id"]))).exit_code == 0
    async with sm() as s:
        assert (await s.execute(select(do_not_call))).all() == []


async def test_frequency_report_holds_on_an_empty_history_and_dealer_commands(cli, tmp_path) -> None:
    invoke, sm, customers, phones = cli
    r = await invoke("outbound", "report", "frequency")
    assert r.exit_code == 0 and json.loads(r.output)["caps"][0]["held"]
    policy = tmp_path / "p.toml"
    policy.write_text('[outbound]\ncenter_timezone = "Nowhere/City"\n', encoding="utf-8")
    r = await invoke("outbound", "report", "frequency", "--policy", str(policy))
    assert r.exit_code != 0 and "center_timezone" in r.output
    assert (await invoke("outbound", "dealer", "add", "D-GZ-03", "--name", "Guangzhou")).exit_code == 0
    assert "is a contact of D-GZ-03" in (await invoke("outbound", "dealer", "contact", "bob", "D-GZ-03")).output
    r = await invoke("outbound", "dealer", "contact", "bob", "D-NONE")
    assert r.exit_code != 0 and "no dealer" in r.output
    r = await invoke("outbound", "report", "handover", "--team", "east", "--day", "2026-11-24", "--csv")
    assert r.output.startswith("section,key,value,detail")


async def test_rules_from_a_policy_file(cli, tmp_path) -> None:
    invoke, sm, customers, phones = cli
    policy = tmp_path / "p.toml"
    policy.write_text("""[outbound]
max_attempts = 2
[[outbound.rules]]
name = "machine-delivered"
kind = "machine.delivered"
reason = "delivery check"
delay_hours = 48
[outbound.credits]
dealer_share = 0.7
""", encoding="utf-8")
    r = await invoke("outbound", "event", "machine.delivered", "--customer", str(customers["li"]), "--key", "DL-1",
                     "--policy", str(policy))
    assert r.exit_code == 0 and "created" in r.output, r.output
    assert "no rule for" in (await invoke("outbound", "event", "repair.completed", "--customer", str(customers["li"]),
                                          "--key", "RO-1", "--policy", str(policy))).output
    async with sm() as s:
        [fu] = (await s.execute(select(outbound_followups))).all()
    assert fu.due_at - fu.created_at >= __import__("datetime").timedelta(hours=47)
    policy.write_text("[outbound]\n[[outbound.rules]]\nname = 'x'\n", encoding="utf-8")
    r = await invoke("outbound", "event", "x", "--customer", "1", "--key", "k", "--policy", str(policy))
    assert r.exit_code != 0 and "rules[0]" in r.output
