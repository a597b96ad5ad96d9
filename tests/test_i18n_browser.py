"""Issue 18, item 9: one language at a time. Every page (agent console with a pop, history, tickets, knowledge base
and back-office questions, the supervisors' agents tab, the wallboard, the routing page with its errors and a test
result, the outbound follow-up console) is walked in real headless Chromium in Chinese and in English; the visible
text must not contain the other language: in Chinese no Latin word of the English dictionaries, in English no CJK
character. The data seeded here is told apart on purpose: Latin names (Ms. Olivia Wilson) and CJK names (吴超先生,
王伟) are removed before the check, and the language switch (each language named in itself) is not read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cti.customers.records import customer_from_fields
from cti.customers.repository import add_customer
from test_web_support import PASSWORD, Web, web  # noqa: F401  (fixture)
from test_console_browser import browser  # noqa: F401  (the Chromium fixture)

pytestmark = pytest.mark.browser

STATIC = Path(__file__).parent.parent / "cti"
DICTIONARIES = ["web/static/i18n.js", "web/static/backoffice-i18n.js", "web/static/wallboard-i18n.js",
                "web/static/routing.js", "outbound/static/console.js"]
# data the test seeds (or the fixture seeds) in Latin or CJK script, and the language switch's labels
LATIN_DATA = {"olivia", "wilson", "ms", "phone", "alice", "bob", "sue", "adam", "cti", "en"}
CJK_DATA = ["吴超先生", "吴超", "王伟先生", "王伟", "Alice 王", "美的微波炉", "微波炉不加热", "客户说微波炉不加热，已约上门"]
# abbreviations both languages write in Latin letters
SHARED = {"vip", "sla", "ivr", "pbx", "json", "csv", "pdf", "iana", "iso", "yyyy", "hh", "mm", "dd", "sip", "pjsip"}


def english_words() -> set[str]:
    """Every word (3+ letters) of the English strings of the pages' dictionaries."""
    words: set[str] = set()
    for rel in DICTIONARIES:
        src = (STATIC / rel).read_text(encoding="utf-8")
        m = re.search(r"(?:const en = \{|\ben: \{)(.*?)\n\s*\}", src, re.S)
        if not m:
            continue
        for value in re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)):
            words.update(w.lower() for w in re.findall(r"[A-Za-z]{3,}", value))
    keys = set(re.findall(r'"([a-z_.]+)":', " ".join((STATIC / r).read_text(encoding="utf-8") for r in DICTIONARIES)))
    return words - SHARED - LATIN_DATA - {k for k in keys if "." not in k and len(k) < 3}


ENGLISH = english_words()


def foreign(text: str, lang: str) -> list[str]:
    if lang == "zh":
        return sorted({w for w in re.findall(r"[A-Za-z]+", text) if w.lower() in ENGLISH})
    for data in sorted(CJK_DATA, key=len, reverse=True):
        text = text.replace(data, " ")
    return sorted(set(re.findall(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]+", text)))


# the visible text, without the language switch (each language's own name is its label)
SHOWN = """() => {
    const sw = [...document.querySelectorAll("[data-lang]")];
    const was = sw.map((b) => b.style.display);
    sw.forEach((b) => { b.style.display = "none"; });
    const text = document.title + "\\n" + document.body.innerText;
    sw.forEach((b, i) => { b.style.display = was[i]; });
    return text;
}"""


async def check(page, lang: str, where: str) -> None:
    text = await page.evaluate(SHOWN)
    bad = foreign(text, lang)
    assert not bad, f"{where} in {lang}: {bad}\n{text}"


async def seed_followups(web: Web) -> tuple[int, int]:
    async with web.daemon.engine.begin() as conn:
        wu = await add_customer(conn, customer_from_fields({
            "family_name": "吴", "given_name": "超", "title": "先生", "language": "zh", "phones": "13700137000"}, "CN"))
        olivia = await add_customer(conn, customer_from_fields({
            "family_name": "Wilson", "given_name": "Olivia", "title": "Ms.", "language": "en",
            "phones": "13600136000"}, "CN"))
    sup = web.auth(await web.login("sue"))
    for cid, reason in ((wu, "repair check"), (olivia, "customer asked for a call back")):
        async with web.http.post(web.base + "/api/outbound/followups", json={"customer_id": cid, "reason": reason},
                                 headers=sup) as r:
            assert r.status in (200, 201), await r.text()
    return wu, olivia


async def context(browser, web: Web, lang: str, username: str | None):
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000},
                                    locale="zh-CN" if lang == "zh" else "en-GB")
    ctx.set_default_timeout(10_000)
    await ctx.add_init_script(f"try {{ localStorage.setItem('cti.lang', '{lang}'); }} catch (e) {{}}")
    if username:
        r = await ctx.request.post(web.base + "/api/login", data={"username": username, "password": PASSWORD})
        assert r.ok
    return ctx


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_every_page_speaks_one_language(web: Web, browser, lang: str):
    await seed_followups(web)
    errors: list[str] = []

    # the console's login page, then alice's console with a pop of the VIP customer
    ctx = await context(browser, web, lang, None)
    page = await ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(web.base + "/")
    await page.wait_for_selector("#login-username")
    await check(page, lang, "console login")
    await ctx.close()

    ctx = await context(browser, web, lang, "alice")
    page = await ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(web.base + "/")
    await page.wait_for_selector("#conn.on", state="attached")
    web.ring("PJSIP/1001", "i18n.1", web.customer_id)
    await page.wait_for_selector("#pop-name:has-text('王伟')")
    await check(page, lang, "console pop")
    for tab in ("history-tab", "tickets-tab", "kb-tab", "questions-tab"):
        button = page.locator(f".tab[data-tab='{tab}']")
        if not await button.count() or not await button.is_visible():
            continue
        await button.click()
        await page.wait_for_selector(f"#{tab}:not(.hidden)")
        if tab == "history-tab":
            await page.wait_for_selector("#history-rows tr", state="attached")
        if tab == "tickets-tab":
            await page.wait_for_selector("#tickets-rows tr", state="attached")
        await check(page, lang, "console " + tab)
    await ctx.close()

    # the supervisor's console (agents) and the wallboard
    ctx = await context(browser, web, lang, "sue")
    page = await ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(web.base + "/")
    agents = page.locator(".tab[data-tab='agents-tab']")
    await agents.wait_for()
    await agents.click()
    await check(page, lang, "console agents")
    await page.goto(web.base + "/wallboard")
    await page.wait_for_selector("#board-view:not(.hidden) .tile")
    await check(page, lang, "wallboard")
    assert re.fullmatch(r"\d{2}:\d{2}:\d{2}", (await page.inner_text("#clock")).strip())  # 24-hour clock
    await ctx.close()

    ctx = await context(browser, web, lang, None)
    page = await ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(web.base + "/wallboard")
    await page.wait_for_selector("#login-view:not(.hidden)")
    await check(page, lang, "wallboard login")
    await page.goto(web.base + "/routing")
    await page.wait_for_selector("#login-view:not(.hidden)")
    await check(page, lang, "routing login")
    await ctx.close()

    # the routing page: its form, the errors of a bad save, a test result
    ctx = await context(browser, web, lang, "adam")
    page = await ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(web.base + "/routing")
    await page.wait_for_selector("#main-view:not(.hidden)")
    await page.click("#dids-add")
    row = page.locator("#dids tbody tr").last
    await row.locator(".k").fill("4008001234")
    await row.locator(".v").fill("q9")  # typed data, no word of either language
    await page.fill("#hours-0", "25:00-26:00")
    await page.fill("#f-crosssell", "[{")
    await page.click("#save")
    await page.wait_for_selector("#errors li:nth-child(3)")
    await page.fill("#t-callerid", "13800138000")
    await page.click("#t-run")
    await page.wait_for_selector("#t-result:not(.hidden)")
    await check(page, lang, "routing")
    await ctx.close()

    # the outbound follow-up console: names in the language's order
    ctx = await context(browser, web, lang, "alice")
    page = await ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(web.base + "/outbound/console")
    await page.wait_for_selector(".fu .customer")
    names = await page.locator(".fu .customer").all_inner_texts()
    assert "吴超先生" in names and "Ms. Olivia Wilson" in names, names
    await check(page, lang, "outbound console")
    await ctx.close()
    assert errors == []
