"""Revocable sessions (issue 17 item 6) over real HTTP and websockets: a logout or ``cti agents passwd``
ends the old token at once (every request checks the account's token version) and closes the
account's websockets; across two nodes on the shared PostgreSQL and Redis too."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from cti.app import Daemon
from cti.config import Settings
from test_web_support import PASSWORD, Web, seed, web  # noqa: F401  (fixture)

REDIS = "redis://127.0.0.1:6379/0"
CLOSE_CODE = 4401  # "authentication failed / session ended"


async def _me(web_base: str, http: aiohttp.ClientSession, token: str) -> int:
    async with http.get(web_base + "/api/me", headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status


async def _closed_with(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> int | None:
    """Read until the server closes the socket; its close code."""
    async def loop() -> int | None:
        while True:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.CLOSE:
                return msg.data
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return None
    return await asyncio.wait_for(loop(), timeout)


async def test_logout_ends_the_token_and_the_open_websocket(web: Web) -> None:
    token = await web.login("alice")
    other = await web.login("alice")  # a second browser of the same account
    ws = await web.ws(token)
    async with web.http.post(web.base + "/api/logout", headers=web.auth(token)) as r:
        assert r.status == 200
    assert await _me(web.base, web.http, token) == 401
    assert await _me(web.base, web.http, other) == 401  # every session of the account
    assert await _closed_with(ws) == CLOSE_CODE
    fresh = await web.login("alice")
    assert await _me(web.base, web.http, fresh) == 200
    async with web.http.get(web.base + "/api/me", headers=web.auth(token)) as r:
        assert (await r.json())["error"] == "session ended, log in again"


async def test_logout_with_a_foreign_origin_ends_nothing(web: Web) -> None:
    token = await web.login("bob")
    async with web.http.post(web.base + "/api/logout", headers={**web.auth(token), "Origin": "http://evil.example"}) as r:
        assert r.status == 403
    assert await _me(web.base, web.http, token) == 200


async def test_cti_agents_passwd_ends_the_old_tokens(web: Web) -> None:
    token = await web.login("bob")
    ws = await web.ws(token)
    env = {**os.environ, "CTI_DATABASE_URL": web.daemon.settings.database.url}
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("cti")), "agents", "passwd", "bob", "--password", "a-new-long-password",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert await _me(web.base, web.http, token) == 401
    await web.daemon.web.sessions.check()  # what the daemon's periodic check runs (every 10 s)
    assert await _closed_with(ws) == CLOSE_CODE
    async with web.http.post(web.base + "/api/login", json={"username": "bob", "password": "a-new-long-password"}) as r:
        assert r.status == 200


def _node(settings: Settings, stream: str, name: str) -> Daemon:
    s = settings.replace("ami", enabled=False).replace("agi", port=0).replace("http", port=0)
    return Daemon(s.replace("bus", url=REDIS, stream=stream).replace("cluster", node_id=name))


@pytest.mark.pg
async def test_a_logout_on_one_node_ends_the_session_on_the_other(settings: Settings) -> None:
    if not settings.database.url.startswith("postgresql"):
        pytest.skip("a cluster shares PostgreSQL")
    stream = f"cti:test:{uuid.uuid4().hex[:8]}"
    a, b = _node(settings, stream, "node-a"), _node(settings, stream, "node-b")
    await a.start()
    await b.start()
    try:
        await seed(a)
        base_a, base_b = f"http://127.0.0.1:{a.web.port}", f"http://127.0.0.1:{b.web.port}"
        async with aiohttp.ClientSession() as http:
            async with http.post(base_a + "/api/login", json={"username": "alice", "password": PASSWORD}) as r:
                token = (await r.json())["token"]
            ws = await http.ws_connect(base_b + "/ws", headers={"Authorization": f"Bearer {token}"})
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
            assert await _me(base_b, http, token) == 200
            async with http.post(base_a + "/api/logout", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200
            assert await _me(base_b, http, token) == 401
            assert await _closed_with(ws) == CLOSE_CODE  # through the bus, not the periodic check
            assert b.web.sessions.ended == 1
    finally:
        await b.stop()
        await a.stop()
