"""The wallboard over HTTP and its websocket on the real daemon (loopback, SQLite and PostgreSQL):
supervisors only, today's calls from the database at start, live ``call.ended`` pushed within a second."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import aiohttp
from sqlalchemy import insert

from cti.db.tables import calls
from cti.stats.live import local_midnight
from cti.web.wallboard import WALLBOARD
from test_web_support import Web, web  # noqa: F401  (fixture)


def ended(queue: str, outcome: str, uniqueid: str, wait: float = 10.0) -> dict:
    now = time.time()
    return {"server": "default", "uniqueid": uniqueid, "queue": queue, "outcome": outcome, "ended_at": now,
            "wait_s": wait, "talk_s": 60.0 if outcome == "answered" else 0.0, "at": now}


async def board_json(web: Web, token: str, query: str = "") -> tuple[int, dict]:
    async with web.http.get(web.base + "/api/wallboard" + query, headers=web.auth(token)) as r:
        return r.status, await r.json()


async def test_only_supervisors_and_admins_see_the_board(web: Web):
    async with web.http.get(web.base + "/api/wallboard") as r:
        assert r.status == 401
    assert (await board_json(web, await web.login("alice")))[0] == 403
    for who in ("sue", "adam"):
        status, board = await board_json(web, await web.login(who))
        assert status == 200 and board["overall"]["queue"] == "*"
    async with web.http.get(web.base + "/wallboard") as r:  # the page itself is static, its data is not
        assert r.status == 200 and "wallboard.js" in await r.text()
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]


async def test_agents_cannot_open_the_wallboard_stream(web: Web):
    token = await web.login("bob")
    try:
        await web.http.ws_connect(web.base + "/ws/wallboard", headers=web.auth(token))
        raise AssertionError("an agent opened the wallboard stream")
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 403
    ws = await web.http.ws_connect(web.base + "/ws/wallboard")  # token in the first message: refused too
    await ws.send_str(json.dumps({"type": "auth", "token": token}))
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4403


async def test_todays_calls_are_read_from_the_database_at_start(web: Web):
    # the seeded world has one call three days ago; add two from today and restart the board's memory
    board = web.daemon.web.app[WALLBOARD]
    now_s = time.time()
    if now_s - local_midnight(now_s, board.tz) < 600:  # just after midnight, "3 minutes ago" is yesterday
        now_s += 600
    board.clock = lambda: now_s
    now = datetime.fromtimestamp(now_s, timezone.utc)
    async with web.daemon.engine.begin() as conn:
        for i, outcome in enumerate(("answered", "abandoned")):
            await conn.execute(insert(calls).values(
                server="default", uniqueid=f"today.{i}", queue="mobile", started_at=now - timedelta(minutes=3),
                queued_at=now - timedelta(minutes=3), answered_at=now - timedelta(minutes=2) if i == 0 else None,
                ended_at=now - timedelta(minutes=1), outcome=outcome, wait_s=60.0, talk_s=60.0 if i == 0 else None))
    await web.daemon.web.app[WALLBOARD].load_today()  # as at start-up
    status, data = await board_json(web, await web.login("sue"))
    mobile = {t["queue"]: t for t in data["queues"]}["mobile"]
    assert mobile["today"]["offered"] == 2 and mobile["today"]["answered"] == 1
    assert mobile["today"]["answer_rate"] == 0.5 and mobile["last_hour"]["offered"] == 2
    assert data["overall"]["today"]["offered"] == 2  # the call of three days ago is not today's


async def test_the_stream_pushes_new_calls_and_honours_the_service_level_seconds(web: Web):
    token = await web.login("sue")
    ws = await web.http.ws_connect(web.base + "/ws/wallboard?sl=30", headers=web.auth(token))
    first = await ws.receive_json(timeout=5)
    assert first["type"] == "wallboard" and first["board"]["targets"]["sl_seconds"] == 30
    assert first["board"]["overall"]["today"]["offered"] == 0
    web.daemon.bus.publish("call.ended", ended("appliances", "answered", "5.1", wait=25))
    web.daemon.bus.publish("call.ended", ended("appliances", "abandoned", "5.2", wait=80))

    async def until_offered(n: int) -> dict:
        while True:
            m = await ws.receive_json(timeout=5)
            if m["type"] == "wallboard" and m["board"]["overall"]["today"]["offered"] == n:
                return m["board"]

    board = await asyncio.wait_for(until_offered(2), 10)
    today = board["overall"]["today"]
    assert today["answer_rate"] == 0.5 and today["service_level"] == 0.5  # 25 s is within 30 s
    status, data = await board_json(web, token)  # the default threshold is 20 s
    assert data["overall"]["today"]["service_level"] == 0.0
    assert (await board_json(web, token, "?sl=abc"))[0] == 400
    await ws.send_str('{"type":"ping"}')
    while (await ws.receive_json(timeout=5))["type"] != "pong":
        pass
    await ws.close()
