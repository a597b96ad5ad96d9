"""Issue 17, item 11: a websocket client that floods messages is closed with 1008 (the others keep
being served); the wallboard serves a bounded number of distinct ``sl`` values; sockets waiting
for their auth message are capped. Over real sockets against a running ``cti serve``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from daemon_proc import DaemonProc, add_agent, start_daemon

from cti.web.wallboard import MAX_LIVE_SL


@pytest.fixture
async def daemon(tmp_path: Path):
    d = await start_daemon(tmp_path, {"CTI_HTTP_MAX_PENDING_WEBSOCKETS": "20"})
    db = f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}"
    await add_agent(db, "alice", "alice-password", interface="PJSIP/1001")
    await add_agent(db, "sue", "sue-password", role="supervisor")
    try:
        yield d
    finally:
        await d.stop()


async def _token(s: aiohttp.ClientSession, d: DaemonProc, user: str, password: str) -> str:
    async with s.post(f"{d.url}/api/login", json={"username": user, "password": password}) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["token"]


async def test_a_ping_flood_is_closed_with_1008_and_others_are_served(daemon: DaemonProc) -> None:
    async with aiohttp.ClientSession() as s:
        token = await _token(s, daemon, "alice", "alice-password")
        auth = {"Authorization": f"Bearer {token}"}
        ws = await s.ws_connect(f"{daemon.url}/ws", headers=auth)

        async def flood() -> None:
            try:
                while not ws.closed:
                    for _ in range(200):
                        await ws.send_str('{"type":"ping"}')
                    await asyncio.sleep(0)
            except (ConnectionError, RuntimeError):
                pass

        async def closed() -> int | None:
            async for _ in ws:
                pass
            return ws.close_code

        flooder = asyncio.create_task(flood())
        t0 = time.monotonic()
        async with s.get(f"{daemon.url}/api/me", headers=auth) as r:  # served meanwhile
            assert r.status == 200
        assert time.monotonic() - t0 < 5.0
        code = await asyncio.wait_for(closed(), 20.0)
        flooder.cancel()
        await asyncio.gather(flooder, return_exceptions=True)
        assert code == 1008
        # a well-behaved client is not affected
        ok = await s.ws_connect(f"{daemon.url}/ws", headers=auth)
        for _ in range(20):
            await ok.send_str('{"type":"ping"}')
        seen = []
        while "pong" not in seen:
            seen.append((await ok.receive_json(timeout=10))["type"])
        await ok.close()


async def test_the_wallboard_serves_a_bounded_number_of_sl_values(daemon: DaemonProc) -> None:
    async with aiohttp.ClientSession() as s:
        auth = {"Authorization": f"Bearer {await _token(s, daemon, 'sue', 'sue-password')}"}
        sockets = [await s.ws_connect(f"{daemon.url}/ws/wallboard?sl={10 + i}", headers=auth)
                   for i in range(MAX_LIVE_SL)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            await s.ws_connect(f"{daemon.url}/ws/wallboard?sl=99", headers=auth)
        assert exc.value.status == 503
        again = await s.ws_connect(f"{daemon.url}/ws/wallboard?sl=10", headers=auth)  # a value in use is fine
        for w in sockets + [again]:
            await w.close()


async def test_sockets_waiting_for_their_auth_message_are_capped(daemon: DaemonProc) -> None:
    async with aiohttp.ClientSession() as s:
        waiting = [await s.ws_connect(f"{daemon.url}/ws") for _ in range(20)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            await s.ws_connect(f"{daemon.url}/ws")
        assert exc.value.status == 503
        for w in waiting:
            await w.close()
