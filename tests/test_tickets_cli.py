"""`cti tickets`, `cti org`, `cti kb` against a real database (SQLite + PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from cti.cli import main
from cti.db.engine import sessionmaker
from cti.db.tables import agents
from cti.tickets.testing import build_demo_org

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
async def cli(engine, db_url):
    sm = sessionmaker(engine)
    async with sm() as s, s.begin():
        org = await build_demo_org(await s.connection(), T0)
        await s.execute(agents.insert().values(username="newbie", role="agent", created_at=T0))
    runner = CliRunner()

    async def invoke(*args: str):
        result = await asyncio.to_thread(runner.invoke, main, list(args), env={"CTI_DATABASE_URL": db_url},
                                         catch_exceptions=False)
        return result

    return invoke, org


async def test_ticket_commands_walk_the_lifecycle(cli, tmp_path):
    invoke, org = cli
    r = await invoke("tickets", "create", "--customer", str(org.customer), "--description", "微波炉不加热",
                     "--product-line", "appliances", "--as", "agent")
    assert r.exit_code == 0, r.output
    assert "ticket #1 created" in r.output
    r = await invoke("tickets", "answer", "1", "please reset the fuse", "--as", "agent")
    assert r.exit_code == 0 and "is answered" in r.output
    r = await invoke("tickets", "close", "1", "--as", "engineer")
    assert r.exit_code != 0 and "only the owner" in r.output
    r = await invoke("tickets", "resolve", "1")
    assert r.exit_code == 0 and "is resolved" in r.output
    r = await invoke("tickets", "reopen", "1", "customer called back")
    assert r.exit_code == 0
    r = await invoke("tickets", "resolve", "1", "--as", "nobody")
    assert r.exit_code != 0 and "no agent account 'nobody'" in r.output
    r = await invoke("tickets", "close", "1")
    assert r.exit_code != 0 and "cannot close a ticket that is reopened" in r.output
    r = await invoke("tickets", "show", "1")
    assert r.exit_code == 0
    assert [line.split()[2] for line in r.output.splitlines() if line.startswith("  ")] == [
        "created", "answered", "resolved", "reopened"]
    r = await invoke("tickets", "list", "--json")
    assert [t["status"] for t in json.loads(r.output)] == ["reopened"]
    r = await invoke("tickets", "escalate")
    assert r.exit_code == 0 and "0 escalated" in r.output


async def test_org_commands(cli):
    invoke, org = cli
    r = await invoke("org", "add", "newbie", "--manager", "lead", "--product-line", "appliances", "--email", "n@example.com")
    assert r.exit_code == 0, r.output
    r = await invoke("org", "add", "director", "--manager", "newbie")
    assert r.exit_code != 0 and "manager loop" in r.output
    r = await invoke("org", "add", "ghost")
    assert r.exit_code != 0 and "no agent account 'ghost'" in r.output
    r = await invoke("org", "list")
    lines = r.output.splitlines()
    assert lines[0].startswith("director ")
    assert any(line.startswith("      newbie ") for line in lines)  # director > head > lead > newbie


async def test_kb_commands(cli, tmp_path):
    invoke, org = cli
    csv_file = tmp_path / "kb.csv"
    csv_file.write_text("title,body,product_line,tags\n打印机卡纸,打开后盖取出纸张,office,printer\n"
                        "Screen flickers,Update the display driver,,display\n", encoding="utf-8")
    r = await invoke("kb", "import", str(csv_file))
    assert r.exit_code == 0 and "imported 2 article(s)" in r.output
    r = await invoke("kb", "add", "--title", "Toner low", "--body", "Replace the toner cartridge", "--tags", "printer")
    assert r.exit_code == 0
    r = await invoke("kb", "search", "卡纸", "--json")
    assert [a["title"] for a in json.loads(r.output)] == ["打印机卡纸"]
    r = await invoke("kb", "search", "display driver")
    assert "Screen flickers" in r.output
    bad = tmp_path / "bad.json"
    bad.write_text('[{"title": "", "body": "x"}]', encoding="utf-8")
    r = await invoke("kb", "import", str(bad))
    assert r.exit_code != 0 and "record 1: title" in r.output
