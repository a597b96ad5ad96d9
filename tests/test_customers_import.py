"""CSV import: upsert by phone, every bad row reported by line, all-or-nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from cti.customers.importer import ImportFailed, import_customers
from cti.customers.lookup import open_lookup
from cti.db.tables import customer_phones, customers, products

HEADER = "phones,family_name,given_name,title,language,vip,dealer,email,products\n"


def write(tmp_path: Path, body: str, name: str = "c.csv") -> Path:
    p = tmp_path / name
    p.write_text(HEADER + body, encoding="utf-8")
    return p


async def count(engine, table) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def test_import_creates_customers_with_phones_and_products(engine, tmp_path):
    f = write(
        tmp_path,
        "13800138000;021-6123-4567,王,伟,先生,zh,yes,D001,wang@example.com,appliances:Microwave M3:2026-10-01;mobile:P50\n"
        "+1 415 555 2671,Smith,John,Mr,en,no,,,office:Printer X\n",
    )
    report = await import_customers(engine, f, "CN")
    assert (report.rows, report.created, report.updated, report.errors) == (2, 2, 0, [])
    assert await count(engine, customers) == 2
    assert await count(engine, customer_phones) == 3
    assert await count(engine, products) == 3
    url = engine.url.render_as_string(hide_password=False)
    lookup = await open_lookup(url)
    try:
        wang = await lookup.lookup("+862161234567")
        assert wang and wang.vip and wang.family_name == "王" and wang.product_lines == {"appliances", "mobile"}
        smith = await lookup.lookup("+14155552671")
        assert smith and smith.language == "en" and smith.product_lines == {"office"}
        assert await lookup.lookup("+8613900000000") is None
    finally:
        await lookup.close()


async def test_reimport_updates_by_phone_and_adds_new_numbers(engine, tmp_path):
    await import_customers(engine, write(tmp_path, "13800138000,王,伟,先生,zh,no,,,appliances:Microwave\n"), "CN")
    second = write(tmp_path, "+86 138 0013 8000;13911112222,王,伟,先生,zh,yes,,,mobile:P60\n", "d.csv")
    report = await import_customers(engine, second, "CN")
    assert (report.created, report.updated) == (0, 1)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(customers.c.vip))).all()
        lines = (await conn.execute(select(products.c.product_line))).scalars().all()
    assert rows == [(True,)]
    assert lines == ["mobile"]  # given products replace the old ones
    assert await count(engine, customer_phones) == 2


async def test_bad_rows_are_reported_by_line_and_nothing_is_written(engine, tmp_path):
    f = write(
        tmp_path,
        "13800138000,王,伟,先生,zh,no,,,\n"
        "not-a-number,李,娜,女士,zh,no,,,\n"
        "13900139000,,,,zh,no,,,\n"
        "13700137000,赵,敏,,fr,no,,,\n"
        "13600136000,周,强,,zh,maybe,,,\n"
        "13500135000,陈,杰,,zh,no,,,tv:Set\n"
        "13400134000,孙,丽,,zh,no,,,appliances:Oven:2026-13-45\n"
        "13300133000,only-two-fields\n",
    )
    with pytest.raises(ImportFailed) as info:
        await import_customers(engine, f, "CN")
    errors = dict(info.value.report.errors)
    assert sorted(errors) == [3, 4, 5, 6, 7, 8, 9]
    assert "phone" in errors[3] and "name" in errors[4] and "language" in errors[5]
    assert "vip" in errors[6] and "product line" in errors[7] and "date" in errors[8] and "fields" in errors[9]
    assert await count(engine, customers) == 0


async def test_skip_bad_imports_the_good_rows(engine, tmp_path):
    f = write(tmp_path, "13800138000,王,伟,先生,zh,no,,,\nxx,李,娜,女士,zh,no,,,\n")
    report = await import_customers(engine, f, "CN", skip_bad=True)
    assert report.created == 1 and [line for line, _ in report.errors] == [3]


async def test_failure_mid_import_leaves_the_database_as_it_was(engine, tmp_path):
    await import_customers(engine, write(tmp_path, "13800138000,王,伟,先生,zh,no,,,\n"), "CN")
    # Valid rows, but the last one is not UTF-8: the whole import must roll back.
    p = tmp_path / "broken.csv"
    p.write_bytes((HEADER + "13911112222,李,娜,女士,zh,no,,,\n" * 3).encode() + b"13922223333,\xff\xfe,x,,zh,no,,,\n")
    with pytest.raises(ImportFailed):
        await import_customers(engine, p, "CN")
    assert await count(engine, customers) == 1


async def test_header_is_checked(engine, tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("phone,name\n13800138000,x\n", encoding="utf-8")
    with pytest.raises(ImportFailed, match="unknown column"):
        await import_customers(engine, p, "CN")
    p.write_text("", encoding="utf-8")
    with pytest.raises(ImportFailed, match="empty"):
        await import_customers(engine, p, "CN")


async def test_import_with_worker_processes(engine, tmp_path):
    body = "".join(f"138{i:08d},张,{i},先生,zh,no,,,mobile:P{i}\n" for i in range(12000))
    report = await import_customers(engine, write(tmp_path, body), "CN", workers=2)
    assert report.created == 12000
    assert await count(engine, customer_phones) == 12000


def test_validated_records_cross_to_the_writer_as_plain_tuples_with_every_field() -> None:
    """Worker processes send records to the writer pickled, as plain tuples: all fields survive."""
    import pickle
    from datetime import date

    from cti.customers.importer import validate_chunk

    header = ["phones", "family_name", "given_name", "title", "language", "vip", "dealer", "email", "products"]
    rows = [(2, ["13800138000;021-6123-4567", "王", "伟", "先生", "zh", "yes", "D1", "w@example.com",
                 "appliances:M3:2026-10-01:SN1;mobile:P9"]),
            (3, ["+1 212 555 0100", "", "Smith", "Mr", "en", "no", "", "", ""])]
    good, bad = validate_chunk(rows, header, "CN")
    assert not bad and [line for line, _ in good] == [2, 3]
    back = pickle.loads(pickle.dumps(good, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == good
    phones, family, given, title, lang, vip, dealer, email, products = back[0][1]
    assert phones == (("+8613800138000", "mobile", "13800138000"), ("+862161234567", "landline", "021-6123-4567"))
    assert (family, given, title, lang, vip, dealer, email) == ("王", "伟", "先生", "zh", True, "D1", "w@example.com")
    assert products == (("appliances", "M3", date(2026, 10, 1), "SN1"), ("mobile", "P9", None, None))
    assert back[1][1][5] is False and back[1][1][8] == ()


def test_the_record_dataclasses_pickle_by_value() -> None:
    import pickle

    from cti.customers.callerid import CallerNumber
    from cti.customers.records import CustomerInput, ProductInput

    rec = CustomerInput(phones=(CallerNumber("+8613800138000", "mobile", "138"),), family_name="王", vip=True,
                        products=(ProductInput("office", "X1"),))
    assert pickle.loads(pickle.dumps(rec)) == rec


async def test_a_bad_row_reports_every_problem_not_only_the_first(engine, tmp_path):
    f = write(tmp_path, "not-a-number,,,,fr,maybe,,no-at-sign,tv:Set\n")
    with pytest.raises(ImportFailed) as info:
        await import_customers(engine, f, "CN")
    [(line, reason)] = info.value.report.errors
    assert line == 2
    for problem in ("phones", "name", "language", "vip", "email", "product line"):
        assert problem in reason


def test_skip_bad_counts_only_the_rows_really_imported(tmp_path):
    import sqlite3

    from click.testing import CliRunner

    from cti.cli import main

    f = write(tmp_path, "13800138000,王,伟,先生,zh,no,,,\nxx,李,娜,女士,zh,no,,,\n13900139000,李,娜,女士,zh,no,,,\n")
    db = tmp_path / "cli.db"
    result = CliRunner().invoke(main, ["customers", "import", str(f), "--skip-bad", "--no-greetings"],
                                env={"CTI_DATABASE_URL": f"sqlite+aiosqlite:///{db}"})
    assert result.exit_code == 0, result.output
    assert "imported 2 of 3 row(s): 2 customer(s) created" in result.output
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (2,)


async def test_a_gbk_file_is_detected_and_read(engine, tmp_path):
    p = tmp_path / "gbk.csv"
    p.write_bytes((HEADER + "13800138000,王,伟,先生,zh,no,,,appliances:美的微波炉 M3\n").encode("gbk"))
    report = await import_customers(engine, p, "CN")
    assert report.created == 1 and report.encoding == "gb18030"
    async with engine.connect() as conn:
        assert (await conn.execute(select(customers.c.family_name))).scalar_one() == "王"
        assert (await conn.execute(select(products.c.model))).scalar_one() == "美的微波炉 M3"


async def test_an_undecodable_file_names_the_real_line_and_the_fix(engine, tmp_path):
    rows = "".join(f"138{i:08d},王,伟,先生,zh,no,,,\n" for i in range(3000))  # the bad byte is far past the start
    p = tmp_path / "mixed.csv"
    p.write_bytes((HEADER + rows).encode("utf-8") + "13900139000,李,娜,女士,zh,no,,,\n".encode("gbk"))
    with pytest.raises(ImportFailed) as info:
        await import_customers(engine, p, "CN")
    message = str(info.value)
    assert "line 3002" in message and "UTF-8" in message and "--encoding" in message
    assert await count(engine, customers) == 0
    # told the encoding, the same file is refused with the line of its first bad byte too
    with pytest.raises(ImportFailed) as info:
        await import_customers(engine, p, "CN", encoding="ascii")
    assert "line 2 " in str(info.value)
