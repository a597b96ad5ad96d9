"""The issue's end-to-end story in real headless Chromium against the simulated PBX: a repair completed
-> the follow-up is due three days later (the test's clock) -> the agent previews and dials it from the
follow-up console -> outcome with a new need -> the lead is on the dealer's page; a ticket resolved the
same week for the same customer gives no second call (the console shows why)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.outbound import http as outbound_http
from cti.tickets.repository import Actor
from cti.tickets.service import TicketService
from outbound_world import SimWorld, wait_status
from test_outbound_http import make_require

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


@pytest.fixture
async def site(engine):
    async with SimWorld(engine) as w:
        app = web.Application()
        outbound_http.add_routes(app, w.sm, None, make_require(w.sm), service=w.svc, bus=w.bus, scheduler=False)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        try:
            yield str(client.make_url("")).rstrip("/"), client, w
        finally:
            await client.close()


async def page_as(browser, account):
    ctx = await browser.new_context(extra_http_headers={"Authorization": f"Bearer {account.id}"})
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


async def test_repair_followup_dialed_from_the_console_becomes_a_dealer_lead(site, browser) -> None:
    base, client, w = site
    alice, sup, dealer1 = w.accounts["alice"], w.accounts["sup"], w.accounts["dealer1"]
    zhang = w.customers["zhang"]
    r = await client.post("/api/outbound/events", json={"kind": "repair.completed", "customer_id": zhang,
                                                        "key": "RO-9", "detail": "boom cylinder"},
                          headers={"Authorization": f"Bearer {sup.id}"})
    assert r.status == 200
    page, errors = await page_as(browser, alice)
    await page.goto(base + "/outbound/console")
    await page.wait_for_selector("#followups .empty")  # not due yet
    w.clock.advance(days=3)
    await page.reload()
    card = page.locator(".fu", has_text="repair check")
    await card.wait_for()
    assert "Zhang" in await card.locator(".customer").inner_text()  # preview: record and reasons on screen
    await card.locator("button.dial").click()
    await page.wait_for_selector("#current:not(.hidden)")
    attempt_id = int(await page.get_attribute("#current", "data-attempt"))
    assert await page.inner_text("#current-reasons") == "repair check"
    assert await wait_status(w.sm, attempt_id, "connected") == "connected"
    await page.select_option("#outcome", "reached")
    await page.fill("#notes", "cylinder fixed, happy")
    await page.fill("#new-need", "a second excavator")
    await page.click("#outcome-submit")
    await page.wait_for_selector("#saved:not(.hidden)")
    assert errors == []

    dealer_page, _ = await page_as(browser, dealer1)
    await dealer_page.goto(base + "/outbound/dealer")
    row = dealer_page.locator("#leads tbody tr", has_text="a second excavator")
    await row.wait_for()
    assert "D-SH-01 60%" in await row.inner_text() and "alice 20%" in await row.inner_text()

    # a ticket for the same customer is resolved two days later; its follow-up comes due in the same week
    w.clock.advance(days=2)
    tickets = TicketService(w.sm, w.bus, w.clock)
    t = await tickets.create(Actor(sup.id, "sup", "supervisor"), customer_id=zhang, description="noise",
                             owner_id=alice.id)
    await tickets.act(Actor(sup.id, "sup", "supervisor"), t["id"], "resolve", "fixed")
    w.clock.advance(days=2)  # the rule's delay counts from the resolution (the bus payload's time)
    card = page.locator(".fu", has_text="complaint resolved")
    for _ in range(100):
        await page.reload()
        if await card.count():
            break
        await page.wait_for_timeout(100)
    await card.wait_for()
    assert await card.locator("button.dial").is_disabled()
    assert "contact cap 1 per 7 days reached" in await card.locator(".blocked").inner_text()
    assert errors == []
