"""The wallboard in real headless Chromium (Debian chromium, driven by Playwright) while the simulated PBX runs
traffic through the real daemon: sim calls -> FastAGI decisions -> app_queue model -> AMI events -> AmiService
live state and ``call.ended`` -> the wallboard stream -> the page. Nothing is injected on the bus."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import pytest

from cti.app import Daemon
from cti.sim.config import SimConfig
from cti.sim.pbx import SimPbx
from cti.sim.traffic import start_of_day
from cti.web.wallboard import WALLBOARD
from test_web_support import PASSWORD, seed

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ALWAYS_OPEN = {str(d): "00:00-23:59" for d in range(7)}
OVERALL = '[data-queue="*"] '


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
async def busy_line(settings):
    """The daemon watching a simulated PBX whose 800 line takes the 9 o'clock peak at 30x speed
    (2,000 calls a day: about two calls a real second) with its six static agents (60 s talk)."""
    agi_port = free_port()
    config = SimConfig(ami_port=0, agi_port=agi_port, speed=30, seed=11, calls_per_day=2000,
                       start_epoch=start_of_day("09:00"), greeting_seconds=1.0, ivr_seconds=1.0)
    async with SimPbx(config) as pbx:
        s = settings.replace("ami", port=pbx.ami_port, username="cti", secret="cti-secret", reconnect_min=0.05)
        s = s.replace("agi", port=agi_port).replace("http", port=0).replace("routing", hours=ALWAYS_OPEN)
        daemon = Daemon(s)
        await daemon.start()
        try:
            await daemon.ami.wait_ready()
            await seed(daemon)
            yield daemon, pbx
        finally:
            await daemon.stop()


async def number(page, selector: str) -> int:
    return int((await page.inner_text(selector)).strip())


async def until(page, selector: str, predicate, timeout: float) -> int:
    """Poll the number shown at ``selector`` until ``predicate(n)``; returns it."""
    async def loop() -> int:
        while True:
            n = await number(page, selector)
            if predicate(n):
                return n
            await asyncio.sleep(0.2)
    return await asyncio.wait_for(loop(), timeout)


async def test_supervisor_sees_the_wallboard_numbers_move_while_the_simulated_pbx_runs_traffic(busy_line, browser,
                                                                                             tmp_path):
    daemon, pbx = busy_line
    base = f"http://127.0.0.1:{daemon.web.port}"
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    await page.goto(base + "/wallboard")
    await page.wait_for_selector("#login-view:not(.hidden)")
    await page.fill("#login-username", "alice")  # an agent is turned away
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_selector("#login-error:has-text('supervisors')")
    await page.fill("#login-username", "sue")
    await page.click("#login-submit")
    await page.wait_for_selector("#board-view:not(.hidden)")
    await page.wait_for_selector("#conn.on")  # the wallboard stream is up (cookie-authenticated)

    # the six static agents of the simulated queues, from the AMI resync
    assert await number(page, OVERALL + '[data-field="agents.ready"]') + \
        await number(page, OVERALL + '[data-field="agents.on_call"]') + \
        await number(page, OVERALL + '[data-field="agents.ringing"]') >= 1
    for q in ("appliances", "complaints", "mobile"):
        await page.wait_for_selector(f'[data-queue="{q}"]')

    # calls end: the offered count moves, then moves again (polled from Python: the page's CSP forbids eval)
    offered = OVERALL + '[data-field="today.offered"]'
    first = await until(page, offered, lambda n: n > 0, 60)
    await until(page, offered, lambda n: n > first, 60)
    # someone is busy on a call at some point (the stream shows live agent states)
    await until(page, OVERALL + '[data-field="agents.on_call"]', lambda n: n > 0, 30)
    rate = (await page.inner_text(OVERALL + '[data-field="today.answer_rate"]')).strip()
    assert rate.endswith("%")
    updated = await page.evaluate("document.body.dataset.updated")
    await asyncio.sleep(1.5)
    assert await page.evaluate("document.body.dataset.updated") != updated  # pushed every second

    # the page shows what the server computes (which only grows during the test)
    shown = await number(page, offered)
    assert daemon.web.app[WALLBOARD].board()["overall"]["today"]["offered"] >= shown
    shot = tmp_path / "wallboard.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    try:
        shutil.copy(shot, "/work/notes/wallboard.png")
    except OSError:
        pass
    assert not errors, errors
    assert pbx.processed_calls > 0
