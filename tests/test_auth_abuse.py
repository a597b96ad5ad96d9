"""Issue 17, items 3 and 9: the login throttle over real HTTP against a running ``cti serve``.

Parallel wrong passwords cannot outrun the per-user limit; a storm cannot starve a legitimate login;
the per-address count never blocks a correct password of a user who is not locked; a trusted
proxy's X-Forwarded-For names the client."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from daemon_proc import DaemonProc, add_agent, start_daemon


async def _login(s: aiohttp.ClientSession, d: DaemonProc, user: str, password: str,
                 xff: str | None = None) -> int:
    headers = {"X-Forwarded-For": xff} if xff else {}
    async with s.post(f"{d.url}/api/login", json={"username": user, "password": password}, headers=headers,
                      timeout=aiohttp.ClientTimeout(total=120)) as r:
        return r.status


@pytest.fixture
async def daemon(tmp_path: Path):
    d = await start_daemon(tmp_path, {"CTI_HTTP_TRUSTED_PROXIES": "127.0.0.1"})
    db = f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}"
    await add_agent(db, "alice", "alice-password")
    await add_agent(db, "bob", "bob-password")
    try:
        yield d
    finally:
        await d.stop()


async def test_parallel_wrong_passwords_are_checked_at_most_per_user_limit_times(daemon: DaemonProc) -> None:
    async with aiohttp.ClientSession() as s:
        codes = await asyncio.gather(*(_login(s, daemon, "alice", f"wrong-{i}", "10.1.1.1") for i in range(60)))
    assert codes.count(401) <= 5, codes  # limit 5 per (user, address): the rest never reach argon2
    assert codes.count(429) >= 55


async def test_a_login_storm_does_not_starve_a_legitimate_login(daemon: DaemonProc) -> None:
    async with aiohttp.ClientSession() as s:
        storm = [asyncio.create_task(_login(s, daemon, f"user{i}", "wrong-password", "10.6.6.6"))
                 for i in range(150)]
        await asyncio.sleep(0.5)  # the storm is in flight
        t0 = time.monotonic()
        assert await _login(s, daemon, "bob", "bob-password", "10.2.2.2") == 200
        elapsed = time.monotonic() - t0
        await asyncio.gather(*storm)
    assert elapsed < 5.0, elapsed  # one argon2 check and a little queueing; generous for a loaded box


async def test_address_failures_do_not_block_a_correct_password_behind_one_nat(daemon: DaemonProc) -> None:
    async with aiohttp.ClientSession() as s:
        for i in range(32):  # a whole floor behind one NAT mistypes: past the 30-per-address count
            assert await _login(s, daemon, f"agent{i}", "wrong-password", "10.3.3.3") == 401
        assert await _login(s, daemon, "alice", "alice-password", "10.3.3.3") == 200


async def test_trusted_proxy_forwarded_for_names_the_client(daemon: DaemonProc) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(5):
            assert await _login(s, daemon, "alice", "wrong-password", "10.4.4.4") == 401
        assert await _login(s, daemon, "alice", "alice-password", "10.4.4.4") == 429  # locked there
        # another client behind the same proxy; a forged left-most hop does not matter
        assert await _login(s, daemon, "alice", "alice-password", "10.4.4.4, 10.5.5.5") == 200


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    d = await start_daemon(tmp_path)
    await add_agent(f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}", "alice", "alice-password")
    try:
        async with aiohttp.ClientSession() as s:
            for i in range(5):
                assert await _login(s, d, "alice", "wrong-password", f"10.9.9.{i}") == 401
            assert await _login(s, d, "alice", "alice-password", "10.9.9.200") == 429
    finally:
        await d.stop()
