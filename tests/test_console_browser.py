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


async def _console(web: Web, browser, username: str, locale: str):
    page = await browser.new_page(viewport={"width": 1360, "height": 900}, locale=locale)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(web.base + "/")
    await page.fill("#login-username", username)
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_selector("#conn.on")
    return page, errors


def _agent_state(web: Web, interface: str, state: str, *, ringing=(), on_call=None) -> None:
    import time
    web.daemon.bus.publish("agent.state", {
        "server": "default", "interface": interface, "name": interface, "state": state, "paused": False,
        "paused_reason": "", "queues": {}, "ringing": list(ringing), "on_call": on_call, "wrapup_until": None,
        "at": time.time()})


async def test_a_missed_call_neither_steals_the_tab_nor_erases_the_unsaved_wrap_up(web: Web, browser):
    """Issue 18 items 1, 2, 5: the agent answered call A and is writing its notes in another tab; call B
    rings (an unknown caller whose carrier sends a name) and is answered elsewhere. B's pop shows while it
    rings, folds into the missed list; the tab stays; A's notes and form stay; the pill agrees."""
    page, errors = await _console(web, browser, "alice", "zh-CN")
    web.ring("PJSIP/1001", "1763900100.1", web.customer_id)
    await page.wait_for_selector("#pop-name:has-text('王伟先生')")
    _agent_state(web, "PJSIP/1001", "on_call", on_call="1763900100.1")
    web.follow("call.answered", "PJSIP/1001", "1763900100.1")
    await page.wait_for_selector("#pop-status:has-text('通话中')")
    await page.wait_for_selector("#agent-state:has-text('通话中')")
    assert not await page.is_disabled("#wrapup-save")
    label = await page.inner_text("#wrapup-call")
    assert "王伟先生" in label and "1763900100.1" not in label  # a person, not the raw uniqueid
    await page.fill("#wrapup-notes", "客户要求上门，周三下午")
    await page.select_option("#wrapup-disposition", "follow_up")
    # the agent looks something up in the call history meanwhile
    await page.click("button[data-tab='history-tab']")
    _agent_state(web, "PJSIP/1001", "ringing", ringing=["1763900100.2"])
    web.ring("PJSIP/1001", "1763900100.2", None, caller_name="WIRELESS CALLER", caller_e164="+8613912345678",
             caller_number="13912345678")
    await page.wait_for_selector(".tab[data-tab='pop-tab'].ringing")
    await page.wait_for_selector("#pop-name:text-is('+8613912345678')", state="attached")  # not wait_for_function: CSP blocks its re-evaluation
    assert await page.is_visible("#history-tab")  # the ring did not pull the agent away
    assert "中文" in await page.text_content("#pop-lang")
    assert "WIRELESS CALLER" in await page.text_content("#pop-number")
    assert await page.input_value("#wrapup-notes") == "客户要求上门，周三下午"
    web.follow("call.ring_stopped", "PJSIP/1001", "1763900100.2", reason="answered_elsewhere")
    _agent_state(web, "PJSIP/1001", "ready")
    await page.wait_for_selector("#missed-list:has-text('已被他人接听')", state="attached")
    await page.wait_for_selector("#agent-state:has-text('空闲')")
    assert not await page.is_visible(".tab[data-tab='pop-tab'].ringing")
    assert await page.is_visible("#history-tab")
    await page.click("button[data-tab='pop-tab']")
    assert await page.inner_text("#pop-name") == "王伟先生"  # back to the call being wrapped up
    assert await page.input_value("#wrapup-notes") == "客户要求上门，周三下午"
    assert "王伟先生" in await page.inner_text("#wrapup-call")
    # switching the language keeps the state pill
    await page.click(".who button[data-lang='en']")
    await page.wait_for_selector("#agent-state:has-text('Ready')")
    await page.click("#wrapup-save")
    await page.wait_for_selector("#wrapup-status:has-text('✓')")
    async with web.daemon.engine.connect() as conn:
        rows = (await conn.execute(select(calls.c.uniqueid, calls.c.notes).where(
            calls.c.uniqueid.in_(["1763900100.1", "1763900100.2"])))).all()
    assert rows == [("1763900100.1", "客户要求上门，周三下午")]  # no wrap-up for the call taken elsewhere
    assert errors == []


async def test_a_second_answered_call_waits_for_the_first_wrap_up(web: Web, browser):
    """Issue 18 item 1: without a wrap-up time the phone can ring again; the next call the agent answers
    does not take the form away from the unsaved notes; it gets the form once they are saved."""
    page, errors = await _console(web, browser, "alice", "zh-CN")
    web.ring("PJSIP/1001", "1763900200.1", web.customer_id)
    await page.wait_for_selector("#pop-name:has-text('王伟先生')")
    web.follow("call.answered", "PJSIP/1001", "1763900200.1")
    await page.wait_for_selector("#pop-status:has-text('通话中')")
    web.follow("call.completed", "PJSIP/1001", "1763900200.1", reason="caller")
    await page.wait_for_selector("#pop-status:has-text('已挂断')")
    await page.fill("#wrapup-notes", "first call's notes")
    web.ring("PJSIP/1001", "1763900200.2", None, caller_e164="+8613912345678", caller_number="13912345678")
    await page.wait_for_selector("#pop-name:text-is('+8613912345678')", state="attached")  # not wait_for_function: CSP blocks its re-evaluation
    web.follow("call.answered", "PJSIP/1001", "1763900200.2")
    await page.wait_for_selector("#pop-status:has-text('通话中')")
    assert await page.input_value("#wrapup-notes") == "first call's notes"
    assert "王伟先生" in await page.inner_text("#wrapup-call")
    await page.click("#wrapup-save")
    await page.wait_for_selector("#wrapup-call:has-text('+8613912345678')")  # then the next call's turn
    assert await page.input_value("#wrapup-notes") == ""
    async with web.daemon.engine.connect() as conn:
        notes = (await conn.execute(select(calls.c.notes).where(calls.c.uniqueid == "1763900200.1"))).scalar()
    assert notes == "first call's notes"
    assert errors == []


async def test_last_calls_show_outcome_agent_and_notes_and_the_wait_includes_the_ring(web: Web, browser):
    """Issue 18 items 4 and 5: a past call shows its outcome, who took it and the notes; the wait shown
    after the answer is the caller's whole wait (queue + ring), not the 0 s before the ring."""
    import time
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import insert
    now = datetime.now(timezone.utc)
    async with web.daemon.engine.begin() as conn:
        await conn.execute(insert(calls).values(server="default", uniqueid="old.2", customer_id=web.customer_id,
                                                queue="appliances", started_at=now - timedelta(days=1),
                                                outcome="answered", agent_id=web.ids["bob"],
                                                agent_interface="PJSIP/1002", disposition="resolved",
                                                notes="换了新的门封条"))
    page, errors = await _console(web, browser, "alice", "zh-CN")
    queued = time.time() - 0.2
    web.ring("PJSIP/1001", "1763900300.1", web.customer_id, queued_at=queued)
    await page.wait_for_selector("#pop-name:has-text('王伟先生')")
    last = await page.inner_text("#last-calls")
    assert "换了新的门封条" in last and "Bob" in last and "已接听" in last and "已解决" in last
    web.follow("call.answered", "PJSIP/1001", "1763900300.1", at=queued + 7.4)
    await page.wait_for_selector("#pop-status:has-text('通话中')")
    web.follow("call.completed", "PJSIP/1001", "1763900300.1", reason="caller", at=queued + 60)
    await page.wait_for_selector("#pop-status:has-text('已挂断')")
    assert await page.inner_text("#call-wait") == "7秒"
    assert errors == []
