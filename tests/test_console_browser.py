"""The agent console in real headless Chromium (Debian chromium, driven by Playwright).

The ringing call is simulated by publishing ``call.ringing`` on the daemon's bus (exactly the
message AmiService publishes for an AgentCalled event), with AMI disabled; the rest is real:
the daemon's HTTP server, the websocket, the console's JS, and the database the wrap-up lands in.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from cti.db.tables import calls
from test_web_support import PASSWORD, Web, web  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}"


@pytest.fixture
async def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


async def test_agent_logs_in_gets_the_pop_and_saves_the_wrap_up(web: Web, browser, tmp_path):
    page = await browser.new_page(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(web.base + "/")
    await page.fill("#login-username", "alice")
    await page.fill("#login-password", "wrong password")
    await page.click("#login-submit")
    await page.wait_for_selector("#login-error:has-text('密码错误')")
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_selector("#console-view:not(.hidden)")
    await page.wait_for_selector("#conn.on")  # the websocket is up (cookie-authenticated)
    assert "cti_token" not in await page.evaluate("document.cookie")  # HttpOnly: out of the page's reach

    web.ring("PJSIP/1001", "1763900000.42", web.customer_id, ivr_choice="1")
    await page.wait_for_selector("#pop-name:has-text('王伟先生')", timeout=10_000)
    assert await page.is_visible("#flag-vip")
    assert await page.is_visible("#flag-complaint")
    assert "投诉" in await page.inner_text("#flag-complaint")
    assert "电饭煲" in await page.inner_text("#suggestion-text")
    assert "美的微波炉 M3" in await page.inner_text("#products")
    assert "已约上门" in await page.inner_text("#last-calls")
    assert await page.inner_text("#pop-status") == "振铃中"
    shot = tmp_path / "pop.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    try:
        shutil.copy(shot, "/work/notes/pop.png")
    except OSError:
        pass

    web.follow("call.answered", "PJSIP/1001", "1763900000.42")
    await page.wait_for_selector("#pop-status:has-text('通话中')")

    await page.select_option("#wrapup-disposition", "follow_up")
    await page.fill("#wrapup-notes", "客户反映微波炉仍不加热，安排周二上门检修")
    await page.click("#wrapup-save")
    await page.wait_for_selector("#wrapup-status:has-text('✓')")
    async with web.daemon.engine.connect() as conn:
        row = (await conn.execute(select(calls.c.disposition, calls.c.notes, calls.c.agent_interface)
                                  .where(calls.c.uniqueid == "1763900000.42"))).first()
    assert row == ("follow_up", "客户反映微波炉仍不加热，安排周二上门检修", "PJSIP/1001")

    # English, and the history finds the note
    await page.click(".who button[data-lang='en']")
    await page.click("button[data-tab='history-tab']")
    await page.fill("#history-q", "上门检修")
    await page.click("#history-form button[type=submit]")
    await page.wait_for_selector("#history-rows:has-text('Follow-up')")
    web.follow("call.completed", "PJSIP/1001", "1763900000.42", reason="caller")
    await page.click("button[data-tab='pop-tab']")
    await page.wait_for_selector("#pop-status:has-text('Hung up')")
    await page.screenshot(path=str(tmp_path / "pop-en.png"), full_page=True)
    assert errors == []


async def test_unknown_caller_becomes_a_customer_from_the_pop(web: Web, browser, tmp_path):
    page = await browser.new_page(viewport={"width": 1360, "height": 900}, locale="en-US")
    await page.goto(web.base + "/")
    await page.fill("#login-username", "bob")
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_selector("#conn.on")
    web.ring("PJSIP/1002", "1763900000.43", None, caller_e164="+8613912345678", caller_number="13912345678")
    await page.wait_for_selector("#unknown-box:not(.hidden)")
    await page.click("#btn-create")
    assert await page.input_value("#cf-phones") == "+8613912345678"
    await page.fill("#cf-family", "Smith")
    await page.fill("#cf-given", "Anna")
    await page.fill("#cf-title", "Ms")
    await page.select_option("#cf-language", "en")
    await page.click("#cf-save")
    await page.wait_for_selector("#pop-name:has-text('Ms Anna Smith')")
    await page.screenshot(path=str(tmp_path / "new-customer.png"), full_page=True)
