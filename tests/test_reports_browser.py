"""The reports page in headless Chromium (the browser in UTC, the call center in Asia/Shanghai): the table shows
Shanghai intervals to the minute, the chart is drawn, and the CSV and PDF links download the figures."""

from __future__ import annotations

import asyncio
import io
import re

import pytest

from test_reports_http import DAY, seed_calls
from test_wallboard_browser import browser, db_url  # noqa: F401  (fixtures: Chromium, SQLite)
from test_web_support import PASSWORD, Web, web  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


async def test_the_reports_page_shows_charts_and_exports_csv_and_pdf(web: Web, browser):  # noqa: F811
    from pypdf import PdfReader

    await seed_calls(web)
    context = await browser.new_context(viewport={"width": 1300, "height": 1000}, timezone_id="UTC", locale="zh-CN",
                                        accept_downloads=True)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(web.base + "/reports")
    await page.wait_for_selector("#login-view:not(.hidden)")
    assert await page.inner_text("#login-submit") == "登录"  # zh strings (browser language)
    await page.fill("#login-username", "sue")
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_selector("#report-view:not(.hidden)")
    await page.fill("#f-from", DAY)
    await page.fill("#f-to", DAY)
    await page.click("#f-show")
    await page.wait_for_selector('body[data-loaded*="from=2026-12-07"]')  # (the page's CSP forbids eval)

    # intervals in Shanghai time (09:01:02.123456 +08:00 is 01:01 UTC), to the minute
    labels = await page.eval_on_selector_all("#report-table tbody td[data-field=label]", "es => es.map(e => e.textContent)")
    assert labels == ["09:00", "09:30", "14:00"]
    body = await page.inner_text("#report-table")
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", body) and "01:00" not in body
    first = await page.eval_on_selector_all("#report-table tbody tr:first-child td", "es => es.map(e => e.textContent)")
    assert first[:5] == ["09:00", "4", "3", "1", "75.0%"]
    assert await page.inner_text("#report-table tfoot td[data-field=offered]") == "9"
    assert "Asia/Shanghai" in await page.inner_text("#tz")
    assert await page.inner_text("#export-pdf") == "导出 PDF"

    # the chart: the server's SVG, loaded and drawn
    size = [0, 0]
    for _ in range(100):
        size = await page.eval_on_selector("#chart-traffic", "i => [i.complete ? i.naturalWidth : 0, i.getBoundingClientRect().height]")
        if size[0]:
            break
        await asyncio.sleep(0.1)
    assert size[0] == 960 and size[1] > 100

    async with page.expect_download() as info:
        await page.click("#export-csv")
    csv_text = open(await (await info.value).path(), encoding="utf-8").read()
    assert csv_text.startswith("start,end,queue") and "2026-12-07T09:00:00+08:00" in csv_text
    async with page.expect_download() as info:
        await page.click("#export-pdf")
    download = await info.value
    assert download.suggested_filename == "cti-report-2026-12-07.pdf"
    pdf = open(await download.path(), "rb").read()
    assert pdf.startswith(b"%PDF-")
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "75.0%" in text and "77.8%" in text and "09:30" in text
    assert not errors, errors
    await context.close()
