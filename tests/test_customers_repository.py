"""Single customer records: add, update (renames reset the greeting), duplicate numbers refused; the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from cti.cli import main
from cti.customers.records import InvalidRecord, customer_from_fields, display_name
from cti.customers.repository import DuplicatePhone, add_customer, get_customer, update_customer
from cti.db.tables import customers


def rec(**fields):
    return customer_from_fields(fields, "CN")


async def test_add_and_get(engine):
    async with engine.begin() as conn:
        cid = await add_customer(conn, rec(phones="13800138000;02161234567", family_name="王", given_name="伟",
                                           title="先生", products="appliances:Microwave M3:2026-10-01"))
        c = await get_customer(conn, cid)
    assert [p["e164"] for p in c["phones"]] == ["+8613800138000", "+862161234567"]
    assert c["products"][0]["model"] == "Microwave M3" and str(c["products"][0]["purchased_on"]) == "2026-10-01"
    assert c["open_tickets"] == [] and c["last_calls"] == []


async def test_a_number_belongs_to_one_customer(engine):
    async with engine.begin() as conn:
        await add_customer(conn, rec(phones="13800138000", family_name="王"))
        with pytest.raises(DuplicatePhone, match=r"\+8613800138000"):
            await add_customer(conn, rec(phones="+86 138 0013 8000", family_name="李"))


async def test_rename_clears_the_greeting_and_other_edits_keep_it(engine):
    async with engine.begin() as conn:
        cid = await add_customer(conn, rec(phones="13800138000", family_name="王", title="先生"))
        await conn.execute(update(customers).where(customers.c.id == cid).values(greeting="greet-1-x"))
        assert await update_customer(conn, cid, rec(phones="13800138000", family_name="王", title="先生", vip="yes")) is None
        assert (await conn.execute(select(customers.c.greeting))).scalar_one() == "greet-1-x"
        change = await update_customer(conn, cid, rec(phones="13800138000;13911112222", family_name="李", title="先生"))
        assert change is not None and change.family_name == "李"
        assert (await conn.execute(select(customers.c.greeting))).scalar_one() is None
        assert len((await get_customer(conn, cid))["phones"]) == 2


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"phones": "13800138000"}, "name"),
        ({"phones": "", "family_name": "王"}, "phone"),
        ({"phones": "13800138000", "family_name": "王" * 100}, "longer"),
        ({"phones": "13800138000", "family_name": "王", "email": "nope"}, "e-mail"),
    ],
)
def test_invalid_records_say_why(fields, reason):
    with pytest.raises(InvalidRecord, match=reason):
        rec(**fields)


def test_names_lose_control_characters():
    r = rec(phones="13800138000", family_name="王\r\nEvent: Fake\x00", given_name="  伟  ")
    assert r.family_name == "王Event: Fake" and r.given_name == "伟"
    assert display_name("王", "伟", "zh") == "王伟" and display_name("Smith", "John", "en") == "John Smith"


def test_cli_import_add_update_show(tmp_path, monkeypatch):
    monkeypatch.setenv("CTI_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("CTI_GREETING_SOUNDS_DIR", str(tmp_path / "sounds"))
    monkeypatch.setenv("CTI_GREETING_ESPEAK", "/nonexistent/espeak-ng")  # keep the CLI test about records
    runner = CliRunner()
    assert runner.invoke(main, ["db", "init"]).exit_code == 0
    csv = tmp_path / "c.csv"
    csv.write_text("phones,family_name,given_name,title,language\n13800138000,王,伟,先生,zh\nbad,李,娜,,zh\n", encoding="utf-8")
    refused = runner.invoke(main, ["customers", "import", str(csv), "--no-greetings"])
    assert refused.exit_code != 0 and "line 3" in refused.output and "unchanged" in refused.output
    ok = runner.invoke(main, ["customers", "import", str(csv), "--skip-bad", "--no-greetings"])
    assert ok.exit_code == 0 and "1 customer(s) created" in ok.output
    added = runner.invoke(main, ["customers", "add", "--phones", "+1 415 555 2671", "--family-name", "Smith",
                                 "--given-name", "John", "--title", "Mr", "--language", "en"])
    assert added.exit_code == 0, added.output
    assert runner.invoke(main, ["customers", "update", "2", "--vip", "yes"]).exit_code == 0
    shown = runner.invoke(main, ["customers", "show", "4155552671", "--json"])
    assert shown.exit_code != 0  # a US number without +1 is not a CN number
    shown = runner.invoke(main, ["customers", "show", "+14155552671", "--json"])
    data = json.loads(shown.output[shown.output.index("{"):])
    assert data["vip"] is True and data["family_name"] == "Smith"
    assert "王伟" in runner.invoke(main, ["customers", "show", "0086 138 0013 8000"]).output
    dup = runner.invoke(main, ["customers", "add", "--phones", "13800138000", "--family-name", "X"])
    assert dup.exit_code != 0 and "already belongs" in dup.output
