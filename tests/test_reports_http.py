"""The reports API on the real daemon (SQLite and PostgreSQL): figures per interval in routing.timezone, the SVG
chart, CSV and PDF exports (the PDF parsed back with pypdf), supervisors only."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from cti.db.tables import calls
from test_web_support import Web, web  # noqa: F401  (fixture)

TZ = ZoneInfo("Asia/Shanghai")
DAY = "2026-12-07"
MICROS = re.compile(r"\d\d:\d\d:\d\d\.\d+")
# (local start HH:MM:SS, outcome): 09:00 four calls (3 answered, 1 abandoned), 09:30 two (1 answered, 1 timeout),
# 14:00 three (all answered); start times carry microseconds, as cti stores them
CALLS = [("09:01:02", "answered"), ("09:10:00", "answered"), ("09:15:30", "abandoned"), ("09:29:59", "answered"),
         ("09:31:00", "answered"), ("09:45:00", "timeout"), ("14:00:01", "answered"), ("14:10:00", "answered"),
         ("14:20:00", "answered")]
REPORT = f"/api/reports?from={DAY}&interval=30"


async def seed_calls(web: Web) -> None:
    async with web.daemon.engine.begin() as conn:
        for i, (hms, outcome) in enumerate(CALLS):
            h, m, s = map(int, hms.split(":"))
            start = datetime(2026, 12, 7, h, m, s, 123456, tzinfo=TZ).astimezone(timezone.utc)
            answered = outcome == "answered"
            await conn.execute(insert(calls).values(
                server="default", uniqueid=f"rep.{i}", queue="mobile", started_at=start, queued_at=start,
                answered_at=start + timedelta(seconds=10) if answered else None, ended_at=start + timedelta(seconds=130),
                outcome=outcome, wait_s=10.0 if answered else 100.0, talk_s=120.0 if answered else None))


async def get(web: Web, token: str, path: str) -> tuple[int, dict[str, str], bytes]:
    async with web.http.get(web.base + path, headers=web.auth(token)) as r:
        return r.status, dict(r.headers), await r.read()


async def test_reports_are_for_supervisors(web: Web):
    async with web.http.get(web.base + REPORT) as r:
        assert r.status == 401
    assert (await get(web, await web.login("alice"), REPORT))[0] == 403
    assert (await get(web, await web.login("sue"), REPORT))[0] == 200
    status, _h, body = await get(web, await web.login("sue"), "/api/reports?from=2026-12-07&to=2027-03-01")
    assert status == 400 and b"at most 31 days" in body
    async with web.http.get(web.base + "/reports") as r:
        assert r.status == 200 and "reports.js" in await r.text()


async def test_the_api_gives_interval_figures_in_the_call_centers_zone(web: Web):
    import json

    await seed_calls(web)
    status, _h, body = await get(web, await web.login("sue"), REPORT)
    data = json.loads(body)
    assert status == 200 and data["timezone"] == "Asia/Shanghai"
    lines = {x["start"]: x for x in data["lines"]}
    assert list(lines) == ["2026-12-07T09:00:00+08:00", "2026-12-07T09:30:00+08:00", "2026-12-07T14:00:00+08:00"]
    nine = lines["2026-12-07T09:00:00+08:00"]
    assert (nine["label"], nine["offered"], nine["answered"], nine["abandoned"], nine["answer_rate"]) == \
        ("09:00", 4, 3, 1, 0.75)
    assert nine["end"] == "2026-12-07T09:30:00+08:00"
    assert (data["total"]["offered"], data["total"]["answered"], data["total"]["abandoned"]) == (9, 7, 1)
    assert not MICROS.search(body.decode())


async def test_chart_csv_and_pdf_carry_the_same_figures(web: Web):
    from pypdf import PdfReader

    await seed_calls(web)
    token = await web.login("sue")
    status, headers, svg = await get(web, token, REPORT.replace("/api/reports", "/api/reports/chart.svg") + "&lang=zh")
    assert status == 200 and headers["Content-Type"].startswith("image/svg+xml")
    text = svg.decode()
    assert text.startswith("<svg") and "09:00 呼入: 4</title>" in text and "14:00 接听: 3</title>" in text

    status, headers, body = await get(web, token, REPORT.replace("/api/reports", "/api/reports/export.csv"))
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert 'filename="cti-report-2026-12-07.csv"' in headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert [(r["start"], r["offered"], r["answered"]) for r in rows] == [
        ("2026-12-07T09:00:00+08:00", "4", "3"), ("2026-12-07T09:30:00+08:00", "2", "1"), ("2026-12-07T14:00:00+08:00", "3", "3")]

    for lang, words in (("en", ("Call center report", "Offered", "Total")), ("zh", ("呼叫中心报表", "接通率", "合计"))):
        status, headers, pdf = await get(web, token, REPORT.replace("/api/reports", "/api/reports/export.pdf") + f"&lang={lang}")
        assert status == 200 and headers["Content-Type"] == "application/pdf"
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
        reader = PdfReader(io.BytesIO(pdf))
        assert len(reader.pages) >= 1
        page_text = "\n".join(p.extract_text() for p in reader.pages)
        for w in words:
            assert w in page_text, (w, page_text)
        # the table: interval, offered, answered, abandoned, answer rate; the total line
        assert re.search(r"09:00\s+4\s+3\s+1\s+75\.0%", page_text), page_text
        assert re.search(r"14:00\s+3\s+3\s+0\s+100\.0%", page_text), page_text
        assert re.search(r"\s9\s+7\s+1\s+77\.8%", page_text), page_text  # the total: 7 of 9 answered
        assert "2026-12-07" in page_text and "Asia/Shanghai" in page_text
