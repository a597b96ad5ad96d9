"""caller_facts (cti/customers/facts.py) stays equal to the join it replaces, on SQLite and
PostgreSQL: after every kind of write, through cti's repositories, raw SQL, the CSV import
(whose triggers rest while it writes), a failed import, and the migration that creates it."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from cti.customers import facts
from cti.customers.importer import ImportFailed, import_customers
from cti.customers.lookup import open_lookup
from cti.customers.records import CallerNumber, CustomerInput, ProductInput
from cti.customers.repository import add_customer, update_customer
from cti.db import migrations
from cti.db.engine import create_engine

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)


async def _drift(engine) -> list:
    async with engine.connect() as conn:
        return await facts.drift(conn)


async def _sql(engine, stmt: str, **params) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(stmt), params)


async def _ticket(engine, customer_id: int, status: str = "open", category: str = "complaint") -> int:
    async with engine.begin() as conn:
        result = await conn.execute(
            text("INSERT INTO tickets (customer_id, category, status, created_at, updated_at) "
                 "VALUES (:c, :cat, :s, :t, :t) RETURNING id"),
            {"c": customer_id, "cat": category, "s": status, "t": NOW})
        return int(result.scalar_one())


def _record(*numbers: str, family: str = "王", lines: tuple[str, ...] = (), vip: bool = False) -> CustomerInput:
    return CustomerInput(
        phones=tuple(CallerNumber(e164=n, kind="mobile", raw=n) for n in numbers),
        family_name=family, given_name="伟", title="先生", vip=vip,
        products=tuple(ProductInput(product_line=line, model="X1") for line in lines))


async def test_every_kind_of_write_keeps_the_facts_equal_to_the_tables(engine, db_url) -> None:
    lookup = await open_lookup(db_url)
    try:
        async with engine.begin() as conn:
            wang = await add_customer(conn, _record("+8613800000001", "+861062000001", lines=("appliances",)))
            li = await add_customer(conn, _record("+8613900000002", family="李", lines=("mobile", "office"), vip=True))
        got = await lookup.lookup("+861062000001")
        assert got and got.customer_id == wang and got.product_lines == {"appliances"} and not got.open_complaint
        got = await lookup.lookup("+8613900000002")
        assert got and got.vip and got.product_lines == {"mobile", "office"}
        assert await _drift(engine) == []

        # A complaint opens, is answered (still open), resolved, reopened; a non-complaint never counts.
        t = await _ticket(engine, wang)
        assert (await lookup.lookup("+8613800000001")).open_complaint
        await _sql(engine, "UPDATE tickets SET status = 'answered' WHERE id = :i", i=t)
        assert (await lookup.lookup("+8613800000001")).open_complaint
        await _sql(engine, "UPDATE tickets SET status = 'resolved' WHERE id = :i", i=t)
        assert not (await lookup.lookup("+8613800000001")).open_complaint
        await _sql(engine, "UPDATE tickets SET status = 'reopened' WHERE id = :i", i=t)
        assert (await lookup.lookup("+861062000001")).open_complaint
        await _sql(engine, "UPDATE tickets SET category = 'question' WHERE id = :i", i=t)
        assert not (await lookup.lookup("+861062000001")).open_complaint
        await _sql(engine, "UPDATE tickets SET category = 'complaint', customer_id = :c WHERE id = :i", c=li, i=t)
        assert (await lookup.lookup("+8613900000002")).open_complaint
        assert not (await lookup.lookup("+8613800000001")).open_complaint
        await _sql(engine, "DELETE FROM tickets WHERE id = :i", i=t)
        assert not (await lookup.lookup("+8613900000002")).open_complaint
        assert await _drift(engine) == []

        # Products: a second line, a line changed, a product moved, one deleted.
        await _sql(engine, "INSERT INTO products (customer_id, product_line, model) VALUES (:c, 'mobile', 'P9')", c=wang)
        assert (await lookup.lookup("+8613800000001")).product_lines == {"appliances", "mobile"}
        await _sql(engine, "UPDATE products SET product_line = 'office' WHERE customer_id = :c AND model = 'P9'", c=wang)
        assert (await lookup.lookup("+8613800000001")).product_lines == {"appliances", "office"}
        await _sql(engine, "UPDATE products SET customer_id = :l WHERE customer_id = :c AND model = 'P9'", l=li, c=wang)
        assert (await lookup.lookup("+8613800000001")).product_lines == {"appliances"}
        await _sql(engine, "DELETE FROM products WHERE customer_id = :c", c=wang)
        assert (await lookup.lookup("+8613800000001")).product_lines == frozenset()
        assert await _drift(engine) == []

        # The customer: renamed through the repository (greeting cleared), then a greeting recorded.
        async with engine.begin() as conn:
            await update_customer(conn, wang, _record(family="汪", lines=("mobile",)))
        got = await lookup.lookup("+8613800000001")
        assert (got.family_name, got.greeting, got.product_lines) == ("汪", None, {"mobile"})
        await _sql(engine, "UPDATE customers SET greeting = 'greet-1-abc', language = 'en' WHERE id = :c", c=wang)
        got = await lookup.lookup("+861062000001")
        assert (got.greeting, got.language) == ("greet-1-abc", "en")

        # Numbers: one changed, one moved to another customer, one deleted.
        await _sql(engine, "UPDATE customer_phones SET e164 = '+8613800000009' WHERE e164 = '+8613800000001'")
        assert await lookup.lookup("+8613800000001") is None
        assert (await lookup.lookup("+8613800000009")).customer_id == wang
        await _sql(engine, "UPDATE customer_phones SET customer_id = :l WHERE e164 = '+861062000001'", l=li)
        got = await lookup.lookup("+861062000001")
        assert got.customer_id == li and got.vip and got.family_name == "李"
        await _sql(engine, "DELETE FROM customer_phones WHERE e164 = '+8613800000009'")
        assert await lookup.lookup("+8613800000009") is None
        assert await _drift(engine) == []

        # Deleting a customer removes every number of theirs (the cascade and the trigger agree).
        await _sql(engine, "DELETE FROM customers WHERE id = :l", l=li)
        assert await lookup.lookup("+8613900000002") is None and await lookup.lookup("+861062000001") is None
        assert await _drift(engine) == []
    finally:
        await lookup.close()


async def test_random_writes_never_let_the_facts_drift(engine) -> None:
    rnd = random.Random(7)
    ids: list[int] = []
    numbers: list[str] = []
    tickets: list[int] = []
    for step in range(160):
        op = rnd.choice(("customer", "phone", "product", "drop_product", "ticket", "status", "rename", "move",
                         "drop_phone", "drop_customer"))
        if op == "customer" or not ids:
            async with engine.begin() as conn:
                n = f"+86138{step:08d}"
                ids.append(await add_customer(conn, _record(n, lines=tuple(rnd.sample(["appliances", "mobile", "office"],
                                                                                        rnd.randint(0, 2))))))
                numbers.append(n)
        elif op == "phone":
            n = f"+86139{step:08d}"
            await _sql(engine, "INSERT INTO customer_phones (customer_id, e164, kind) VALUES (:c, :e, 'mobile')",
                       c=rnd.choice(ids), e=n)
            numbers.append(n)
        elif op == "product":
            await _sql(engine, "INSERT INTO products (customer_id, product_line, model) VALUES (:c, :l, 'M')",
                       c=rnd.choice(ids), l=rnd.choice(["appliances", "mobile", "office"]))
        elif op == "drop_product":
            await _sql(engine, "DELETE FROM products WHERE id IN (SELECT id FROM products WHERE customer_id = :c "
                               "ORDER BY id LIMIT 1)", c=rnd.choice(ids))
        elif op == "ticket":
            tickets.append(await _ticket(engine, rnd.choice(ids), rnd.choice(["open", "resolved"]),
                                         rnd.choice(["complaint", "complaint", "question"])))
        elif op == "status" and tickets:
            await _sql(engine, "UPDATE tickets SET status = :s WHERE id = :i",
                       s=rnd.choice(["open", "answered", "resolved", "closed", "reopened"]), i=rnd.choice(tickets))
        elif op == "rename":
            await _sql(engine, "UPDATE customers SET family_name = :f, vip = :v WHERE id = :c",
                       f=rnd.choice("赵钱孙李"), v=rnd.random() < 0.5, c=rnd.choice(ids))
        elif op == "move" and numbers:
            await _sql(engine, "UPDATE customer_phones SET customer_id = :c WHERE e164 = :e",
                       c=rnd.choice(ids), e=rnd.choice(numbers))
        elif op == "drop_phone" and numbers:
            await _sql(engine, "DELETE FROM customer_phones WHERE e164 = :e", e=numbers.pop(rnd.randrange(len(numbers))))
        elif op == "drop_customer" and len(ids) > 3:
            await _sql(engine, "DELETE FROM customers WHERE id = :c", c=ids.pop(rnd.randrange(len(ids))))
        if step % 40 == 39:
            assert await _drift(engine) == [], f"after step {step} ({op})"
    async with engine.connect() as conn:
        assert int((await conn.execute(text("SELECT count(*) FROM caller_facts"))).scalar_one()) >= 5  # the run left something to compare
    assert await _drift(engine) == []


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("phones,family_name,given_name,title,language,vip,dealer,email,products\n" + "".join(rows),
                    encoding="utf-8")
    return path


async def _triggers(engine) -> set[str]:
    async with engine.connect() as conn:
        return await _triggers_in(conn)


async def _triggers_in(conn) -> set[str]:
    """The caller_facts triggers in force for ``conn`` (PostgreSQL: none while paused)."""
    if conn.dialect.name == "postgresql":
        paused = (await conn.execute(text(f"SELECT current_setting('{facts.PAUSE_SETTING}', true)"))).scalar()
        if paused == "on":
            return set()
        sql = "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'cti_caller_facts%'"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'caller_facts%'"
    return {r[0] for r in await conn.execute(text(sql))}


async def test_an_import_recomputes_what_it_wrote_and_keeps_the_triggers(engine, tmp_path: Path) -> None:
    before = await _triggers(engine)
    assert len(before) >= 4
    async with engine.begin() as conn:
        await add_customer(conn, _record("+8613800000001", lines=("office",)))
    first = _csv(tmp_path / "a.csv", [f"138{i:08d},张,{i},先生,zh,no,,,mobile:M1:2024-01-01\n" for i in range(1, 60)])
    report = await import_customers(engine, first, "CN")
    assert (report.created, report.updated) == (58, 1)
    assert await _drift(engine) == []
    # Second import: new names and products for some, a new number for one, a new customer.
    second = _csv(tmp_path / "b.csv", ["13800000002,刘,二,女士,zh,yes,,,appliances:A1:2024-01-01;office:O1:2024-02-01\n",
                                       "13800000003;13900000003,陈,三,先生,en,no,,,\n",
                                       "13700000001,周,新,先生,zh,no,,,appliances:A2:2025-01-01\n"])
    await import_customers(engine, second, "CN")
    assert await _drift(engine) == []
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT family_name, vip, product_lines FROM caller_facts "
                                       "WHERE e164 = '+8613800000002'"))).one()
    assert (row[0], bool(row[1]), row[2]) == ("刘", True, 1 | 4)
    assert await _triggers(engine) == before
    # The triggers work again right after an import.
    await _ticket(engine, 1)
    assert await _drift(engine) == []


async def test_a_failed_import_leaves_facts_and_triggers_as_they_were(engine, tmp_path: Path, monkeypatch) -> None:
    from cti.customers import importer

    monkeypatch.setattr(importer, "CHUNK", 2)  # the bad row comes after a chunk was written, triggers paused
    async with engine.begin() as conn:
        await add_customer(conn, _record("+8613800000001", lines=("office",)))
    before = await _triggers(engine)
    bad = _csv(tmp_path / "bad.csv", ["13800000001,张,一,先生,zh,no,,,mobile:M1:2024-01-01\n",
                                      "13800000002,刘,二,女士,zh,no,,,\n",
                                      "not-a-number,李,二,先生,zh,no,,,\n"])
    paused = []
    real_pause = facts.pause

    async def pause(conn) -> None:
        await real_pause(conn)
        paused.append(await _triggers_in(conn))

    monkeypatch.setattr(facts, "pause", pause)
    with pytest.raises(ImportFailed):
        await import_customers(engine, bad, "CN", workers=0)
    assert paused == [set()]  # it did write with the triggers paused, then rolled back
    assert await _triggers(engine) == before
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT e164, family_name, product_lines FROM caller_facts"))).all()
    assert [tuple(r) for r in rows] == [("+8613800000001", "王", 4)]
    await _sql(engine, "INSERT INTO products (customer_id, product_line, model) VALUES (1, 'mobile', 'M')")
    assert await _drift(engine) == []


async def test_the_migration_fills_the_facts_of_an_existing_database(db_url: str) -> None:
    eng = create_engine(db_url)
    try:
        await migrations.upgrade(eng, target="0003", fresh="replay")
        async with eng.begin() as conn:
            await add_customer(conn, _record("+8613800000001", "+8613900000001", lines=("appliances", "mobile")))
            await add_customer(conn, _record("+8613800000002", family="李", vip=True))
        await _ticket(eng, 2)
        result = await migrations.upgrade(eng)
        assert result.applied[0] == "0004"  # and the later revisions
        assert await _drift(eng) == []
        async with eng.connect() as conn:
            rows = (await conn.execute(text("SELECT e164, customer_id, open_complaint, product_lines FROM caller_facts "
                                            "ORDER BY e164"))).all()
        assert [(r[0], r[1], bool(r[2]), r[3]) for r in rows] == [
            ("+8613800000001", 1, False, 3), ("+8613800000002", 2, True, 0), ("+8613900000001", 1, False, 3)]
        await _sql(eng, "DELETE FROM products WHERE customer_id = 1 AND product_line = 'mobile'")
        assert await _drift(eng) == []
    finally:
        await eng.dispose()


async def test_drift_reports_a_row_written_behind_the_triggers_back(engine) -> None:
    async with engine.begin() as conn:
        await add_customer(conn, _record("+8613800000001"))
    await _sql(engine, "UPDATE caller_facts SET family_name = 'forged' WHERE e164 = '+8613800000001'")
    found = await _drift(engine)
    assert [(e, s[5], x[5]) for e, s, x in found] == [("+8613800000001", "forged", "王")]
    async with engine.begin() as conn:
        assert await facts.rebuild(conn) == 1
    assert await _drift(engine) == []


def test_cli_db_check_reports_drift_and_repairs_it(tmp_path: Path, monkeypatch) -> None:
    import sqlite3

    from click.testing import CliRunner

    from cti.cli import main

    db = tmp_path / "cli.db"
    monkeypatch.setenv("CTI_DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    monkeypatch.setenv("CTI_GREETING_ESPEAK", "/nonexistent/espeak-ng")
    runner = CliRunner()
    assert runner.invoke(main, ["db", "init"]).exit_code == 0
    assert runner.invoke(main, ["customers", "add", "--phones", "13800138000", "--family-name", "王"]).exit_code == 0
    ok = runner.invoke(main, ["db", "check"])
    assert ok.exit_code == 0 and "consistent" in ok.output
    with sqlite3.connect(db) as conn:  # written behind the triggers' back
        conn.execute("UPDATE caller_facts SET vip = 1, family_name = 'X'")
        conn.execute("INSERT INTO caller_facts VALUES ('+8613900000000', 9, 'zh', 0, NULL, '', '', '', 0, 0)")
    bad = runner.invoke(main, ["db", "check"])
    assert bad.exit_code == 1
    assert "+8613800138000: columns vip, family_name" in bad.output and "王" not in bad.output
    assert "+8613900000000: a number no customer has" in bad.output
    fixed = runner.invoke(main, ["db", "check", "--repair"])
    assert fixed.exit_code == 0 and "rebuilt: 1 number(s)" in fixed.output
    assert runner.invoke(main, ["db", "check"]).exit_code == 0


@pytest.mark.pg
@pytest.mark.parametrize("scenario", ["two complaints deleted", "a product removed while another is added"])
async def test_concurrent_changes_to_one_customer_leave_no_stale_flag_on_postgresql(engine, scenario) -> None:
    """Two agents change one customer's complaints or products at the same moment: under READ
    COMMITTED each transaction's trigger alone would not see the other's change."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    async with engine.begin() as conn:
        wang = await add_customer(conn, _record("+8613800000001", lines=("appliances",)))
    if scenario == "two complaints deleted":
        first, second = await _ticket(engine, wang), await _ticket(engine, wang)
        writes = [("DELETE FROM tickets WHERE id = :i", {"i": first}), ("DELETE FROM tickets WHERE id = :i", {"i": second})]
        column, expected = "open_complaint", False
    else:
        writes = [("DELETE FROM products WHERE customer_id = :c", {"c": wang}),
                  ("INSERT INTO products (customer_id, product_line, model) VALUES (:c, 'mobile', 'P9')", {"c": wang})]
        column, expected = "product_lines", 2
    async with engine.connect() as a, engine.connect() as b:
        await a.begin()
        await a.execute(text(writes[0][0]), writes[0][1])
        await b.begin()
        other = asyncio.create_task(b.execute(text(writes[1][0]), writes[1][1]))
        await asyncio.sleep(0.3)
        assert not other.done()  # it waits for the first transaction
        await a.commit()
        await other
        await b.commit()
    async with engine.connect() as conn:
        value = (await conn.execute(text(f"SELECT {column} FROM caller_facts"))).scalar_one()
    assert value == expected
    assert await _drift(engine) == []


@pytest.mark.parametrize("url, says", [
    ("sqlite+aiosqlite:///{tmp}/empty.db", "no such table"),
    ("postgresql+asyncpg://postgres@127.0.0.1:1/x", "Connect call failed"),
])
def test_cli_without_a_usable_database_says_so_in_one_line(tmp_path: Path, monkeypatch, url: str, says: str) -> None:
    from click.testing import CliRunner

    from cti.cli import main

    monkeypatch.setenv("CTI_DATABASE_URL", url.format(tmp=tmp_path))
    for args in (["db", "check"], ["customers", "show", "13800138000"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, result.output
        assert says in result.output and "cti db init" in result.output
        assert "Traceback" not in result.output and result.output.count("\n") == 2
