"""Tickets and the knowledge base in the agent console, in real headless Chromium (Debian chromium, Playwright).

The ringing call is published on the daemon's bus (AMI off), as in test_console_browser; the rest is real:
HTTP server, console websockets, the console's JS, the database, and the escalation scheduler's pass, run
with a clock 25 hours ahead (no sleeping).
"""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

from backoffice_world import scheduler_at, seed_org
from cti.db.tables import calls, kb_articles, tickets
from test_console_browser import browser  # noqa: F401  (fixture)
from test_web_support import PASSWORD, Web, web  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}"


async def _console(browser, web: Web, username: str, locale: str = "zh-CN"):
    ctx = await browser.new_context(viewport={"width": 1360, "height": 900}, locale=locale)
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(web.base + "/")
    await page.fill("#login-username", username)
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_selector("#conn.on")
    return page, errors


async def test_complaint_from_a_pop_escalates_to_the_manager(web: Web, browser, tmp_path):
    ids = await seed_org(web)
    alice, alice_errors = await _console(browser, web, "alice")
    lena, lena_errors = await _console(browser, web, "lena")

    web.ring("PJSIP/1001", "1763900200.7", web.customer_id, ivr_choice="1")
    await alice.wait_for_selector("#pop-name:has-text('王伟先生')", timeout=10_000)
    # the pop suggests the KB article of the customer's product line and IVR choice
    await alice.wait_for_selector("#kb-suggest li:has-text('微波炉不加热怎么办')")

    await alice.click("#btn-complaint")
    await alice.wait_for_selector("#ticket-form:not(.hidden)")
    assert await alice.input_value("#tf-line") == "appliances"
    assert await alice.input_value("#tf-category") == "complaint"
    await alice.fill("#tf-description", "微波炉维修两次仍不加热，客户要求换新")
    await alice.click("#tf-save")
    await alice.wait_for_selector("#tf-status:has-text('✓')")
    await alice.screenshot(path=str(tmp_path / "pop-ticket.png"), full_page=True)
    try:
        shutil.copy(tmp_path / "pop-ticket.png", "/work/notes/tickets-pop.png")
    except OSError:
        pass
    async with web.daemon.engine.connect() as conn:
        row = (await conn.execute(select(tickets.c.id, tickets.c.owner_id, tickets.c.call_id, tickets.c.customer_id,
                                         tickets.c.product_line, tickets.c.escalation_level)
                                  .where(tickets.c.description == "微波炉维修两次仍不加热，客户要求换新"))).one()
        call_uid = (await conn.execute(select(calls.c.uniqueid).where(calls.c.id == row.call_id))).scalar_one()
    assert (row.owner_id, row.customer_id, row.product_line, row.escalation_level) == (
        ids["alice"], web.customer_id, "appliances", 0)
    assert call_uid == "1763900200.7"
    tid = row.id

    # alice's own list shows it with a running SLA countdown
    await alice.click("button[data-tab='tickets-tab']")
    await alice.wait_for_selector(f"#tickets-rows tr[data-id='{tid}'] .sla-clock")
    clock_text = await alice.inner_text(f"#tickets-rows tr[data-id='{tid}'] .sla-clock")
    assert clock_text.startswith("23:") or clock_text.startswith("24:"), clock_text

    # the deadline passes: one scheduler pass escalates to lena, whose console is told at once
    report = await scheduler_at(web, 25 * 3600).run_once()
    assert report.tickets.escalated >= 1
    await lena.wait_for_selector(f"#notif-list .notif.escalated:has-text('#{tid}')")
    assert "升级给您" in await lena.inner_text("#notif-list")
    await alice.wait_for_selector(f"#notif-list .notif.escalated:has-text('#{tid}')")
    await lena.click(f"#notif-list .notif.escalated:has-text('#{tid}')")

    await lena.wait_for_selector("#td-title:has-text('王伟先生')")
    assert f"#{tid}" in await lena.inner_text("#td-title")
    history = await lena.inner_text("#td-history")
    assert "创建" in history and "升级" in history and "Alice 王" in history
    assert "Lena 李" in await lena.inner_text("#td-meta")
    await lena.wait_for_selector(f"#tickets-rows tr[data-id='{tid}'] td.level:has-text('1')")
    shot = tmp_path / "tickets.png"
    await lena.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    try:
        shutil.copy(shot, "/work/notes/tickets.png")
    except OSError:
        pass

    # the manager answers; the history grows, the SLA clock stops
    await lena.fill("#td-text", "已安排换新，周三送达")
    await lena.click("#td-act-answer")
    await lena.wait_for_selector("#td-status:has-text('已答复')")
    assert "已安排换新" in await lena.inner_text("#td-history")
    assert await lena.inner_text("#td-sla") == "—"
    assert await lena.is_visible("#td-act-close") and await lena.is_visible("#td-act-reopen")
    assert alice_errors == [] and lena_errors == []


async def test_kb_search_and_the_learning_loop_in_the_console(web: Web, browser):
    ids = await seed_org(web)
    alice, alice_errors = await _console(browser, web, "alice")

    await alice.click("button[data-tab='kb-tab']")
    await alice.fill("#kb-q", "不加热")
    await alice.click("#kb-form button[type=submit]")
    await alice.wait_for_selector("#kb-results li:has-text('微波炉不加热怎么办')")
    assert "Phone battery" not in await alice.inner_text("#kb-results")
    await alice.fill("#kb-q", "battery drains")
    await alice.click("#kb-form button[type=submit]")
    await alice.wait_for_selector("#kb-results li:has-text('Phone battery drains quickly')")
    await alice.click("#kb-results li:has-text('Phone battery drains quickly')")
    await alice.wait_for_selector("#kb-article-body:has-text('background refresh')")

    # no answer: ask the back office; ed (engineer) answers from his queue, sue approves it as an article
    await alice.fill("#kb-q", "烤箱 E7")
    await alice.click("#kb-form button[type=submit]")
    await alice.wait_for_selector("#kb-results li:has-text('没有找到文章')")
    await alice.click("#kb-ask")
    assert await alice.input_value("#ask-question") == "烤箱 E7"
    await alice.fill("#ask-question", "烤箱显示 E7 是什么意思？")
    await alice.select_option("#ask-line", "appliances")
    await alice.click("#ask-submit")
    await alice.wait_for_selector("#ask-status:has-text('✓')")
    assert "Ed 工程师" in await alice.inner_text("#ask-status")

    ed, ed_errors = await _console(browser, web, "ed", locale="en-US")
    await ed.click("button[data-tab='questions-tab']")
    await ed.wait_for_selector("#questions-rows li:has-text('E7')")
    await ed.click("#questions-rows li:has-text('E7')")
    await ed.fill("#qd-answer-text", "E7: temperature sensor fault, book an engineer visit.")
    await ed.click("#qd-answer-send")
    await ed.wait_for_selector("#qd-answer:has-text('temperature sensor')")
    await alice.wait_for_selector("#notif-list .notif.kb:has-text('temperature sensor')")

    sue, sue_errors = await _console(browser, web, "sue", locale="en-US")
    await sue.click("button[data-tab='questions-tab']")
    await sue.click("#question-views [data-view='answered']")
    await sue.click("#questions-rows li:has-text('E7')")
    await sue.fill("#qd-approve-title", "Oven error E7")
    await sue.click("#qd-approve")
    await sue.wait_for_selector("#qd-result:has-text('Oven error E7')")
    await alice.wait_for_selector("#notif-list .notif.kb:has-text('Oven error E7')")
    async with web.daemon.engine.connect() as conn:
        assert (await conn.execute(select(kb_articles.c.body).where(kb_articles.c.title == "Oven error E7"))).scalar_one() \
            == "E7: temperature sensor fault, book an engineer visit."
    # the new article is found by the console's search
    await alice.click("button[data-tab='kb-tab']")
    await alice.fill("#kb-q", "E7")
    await alice.click("#kb-form button[type=submit]")
    await alice.wait_for_selector("#kb-results li:has-text('Oven error E7')")
    # articles are written by supervisors and engineers only
    assert not await alice.is_visible("#kb-new")
    await sue.click("button[data-tab='kb-tab']")
    await sue.click("#kb-new")
    await sue.fill("#ke-title", "洗碗机 E4 报警")
    await sue.fill("#ke-body", "E4 表示进水不足：检查水龙头是否打开、进水管是否弯折。")
    await sue.select_option("#ke-line", "appliances")
    await sue.fill("#ke-tags", "洗碗机 ivr:1")
    await sue.click("#ke-save")
    await sue.wait_for_selector("#kb-article-title:has-text('洗碗机 E4 报警')")
    await sue.click("#kb-edit")
    await sue.fill("#ke-body", "E4 表示进水不足：检查水龙头是否打开、进水管是否弯折，再重启洗碗机。")
    await sue.click("#ke-save")
    await sue.wait_for_selector("#kb-article-body:has-text('再重启洗碗机')")
    await alice.fill("#kb-q", "洗碗机 进水")
    await alice.click("#kb-form button[type=submit]")
    await alice.wait_for_selector("#kb-results li:has-text('洗碗机 E4 报警')")
    assert alice_errors == [] and ed_errors == [] and sue_errors == []


async def test_the_article_form_lists_every_missing_field_at_once(web: Web, browser):
    """Issue 18, item 11: an empty article names both its missing fields (title and body) in one go, in the page's
    language, and nothing is sent; with the title filled only the body is left."""
    sue, errors = await _console(browser, web, "sue")
    await sue.click("button[data-tab='kb-tab']")
    await sue.click("#kb-new")
    await sue.click("#ke-save")
    await sue.wait_for_selector("#kb-editor .form-errors li")
    assert await sue.locator("#kb-editor .form-errors li").all_inner_texts() == ["Title: required", "Body: required"]
    assert await sue.locator("#kb-editor .invalid").count() == 2
    await sue.fill("#ke-title", "洗碗机 E4 报警")
    await sue.click("#ke-save")
    await sue.wait_for_selector("#kb-editor .form-errors li >> nth=1", state="detached")
    assert await sue.locator("#kb-editor .form-errors li").all_inner_texts() == ["Body: required"]
    async with web.http.get(web.base + "/api/kb/search?q=E4", headers=web.auth(await web.login("sue"))) as r:
        assert (await r.json())["articles"] == []
    await sue.click(".topbar [data-lang='zh']")  # the same list in Chinese
    await sue.click("#ke-save")
    await sue.wait_for_selector("#kb-editor .form-errors li:has-text('正文：必填')")
    await sue.fill("#ke-body", "E4 表示进水不足。")
    await sue.click("#ke-save")
    await sue.wait_for_selector("#kb-article-title:has-text('洗碗机 E4 报警')")
    assert await sue.locator("#kb-editor .form-errors li").count() == 0
    assert errors == []
