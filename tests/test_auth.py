"""Authentication and authorization of the console, over real sockets (and the pure token/limiter cores)."""

from __future__ import annotations

import base64
import json
import time

import aiohttp
import pytest

from cti.web.ratelimit import LoginLimiter
from cti.web.tokens import BadToken, TokenSigner
from test_web_support import PASSWORD, web  # noqa: F401  (fixture)

SECRET = b"0123456789abcdef0123456789abcdef"


@pytest.fixture
def db_url(tmp_path):
    """Authentication does not depend on the database engine: SQLite only (argon2 is slow on purpose)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}"


# -- pure cores ------------------------------------------------------------------------------
def test_token_round_trip_and_expiry():
    s = TokenSigner(SECRET, ttl_s=60)
    token, claims = s.issue(7, "alice", "agent", now=1000.0)
    assert s.verify(token, 1059.0).agent_id == 7
    with pytest.raises(BadToken, match="expired"):
        s.verify(token, 1060.0)


@pytest.mark.parametrize("mutate", [
    lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"),             # signature bit-flip
    lambda t: t.split(".")[0] + ".",                                    # no signature
    lambda t: "x" + t,                                                  # body changed
    lambda t: t + ".x",                                                 # extra part
    lambda t: "",                                                       # empty
    lambda t: "é" * 10 + "." + "é",                                     # not ASCII
    lambda t: "a" * 5000,                                               # huge
])
def test_tampered_tokens_are_refused(mutate):
    s = TokenSigner(SECRET, ttl_s=60)
    token, _ = s.issue(7, "alice", "agent", now=1000.0)
    with pytest.raises(BadToken):
        s.verify(mutate(token), 1001.0)


def test_role_escalation_in_claims_breaks_the_signature():
    s = TokenSigner(SECRET, ttl_s=60)
    token, _ = s.issue(7, "alice", "agent", now=1000.0)
    body, mac = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode() + "." + mac
    with pytest.raises(BadToken, match="signature"):
        s.verify(forged, 1001.0)
    with pytest.raises(BadToken, match="signature"):
        TokenSigner(b"another-secret-another-secret!!", 60).verify(token, 1001.0)


def test_limiter_counts_per_user_and_address_and_forgets_after_the_window():
    lim = LoginLimiter(per_user=3, per_address=5, window_s=100)
    for i in range(3):
        assert lim.begin("alice", "1.2.3.4", 10.0 + i) == 0           # counted when it starts
        lim.failed("alice", "1.2.3.4", 10.0 + i)
    assert lim.begin("alice", "1.2.3.4", 20.0) == pytest.approx(90.0)
    assert lim.retry_after("ALICE", "1.2.3.4", 20.0) > 0            # usernames compare case-insensitively
    assert lim.retry_after("alice", "5.6.7.8", 20.0) == 0           # another address is not blocked
    for name in ("bob", "carol"):
        assert lim.begin(name, "1.2.3.4", 21.0) == 0                # nor another user
        lim.failed(name, "1.2.3.4", 21.0)
    assert lim.address_failures("1.2.3.4", 23.0) == 5
    assert lim.begin("dave", "1.2.3.4", 23.0) == 0                  # the address count never locks out (NAT)
    assert lim.retry_after("alice", "1.2.3.4", 110.5) == 0          # the window has passed


def test_limiter_counts_attempts_in_flight():
    lim = LoginLimiter(per_user=5)
    waits = [lim.begin("alice", "1.2.3.4", 10.0) for _ in range(60)]  # none has finished yet
    assert waits.count(0) == 5
    lim.succeeded("alice", "1.2.3.4")
    assert lim.begin("alice", "1.2.3.4", 11.0) == 0


# -- over HTTP -----------------------------------------------------------------------------------
async def test_login_gives_a_token_and_an_httponly_strict_cookie(web):
    async with web.http.post(web.base + "/api/login", json={"username": "alice", "password": PASSWORD}) as r:
        assert r.status == 200
        body = await r.json()
        cookie = r.headers["Set-Cookie"]
    assert body["agent"]["interface"] == "PJSIP/1001" and "password_hash" not in json.dumps(body)
    assert body["expires_at"] > time.time()
    assert "cti_token=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    async with web.http.get(web.base + "/api/me", headers=web.auth(body["token"])) as r:
        assert r.status == 200 and (await r.json())["agent"]["username"] == "alice"


async def test_the_cookie_alone_authenticates_rest_and_websocket(web):
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.post(web.base + "/api/login", json={"username": "alice", "password": PASSWORD}) as r:
            assert r.status == 200
        async with browser.get(web.base + "/api/me") as r:
            assert r.status == 200
        ws = await browser.ws_connect(web.base + "/ws", origin=web.base)
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        await ws.close()


@pytest.mark.parametrize("username,password", [("alice", "wrong password"), ("nobody", PASSWORD), ("alice", "")])
async def test_bad_credentials_are_refused_alike(web, username, password):
    async with web.http.post(web.base + "/api/login", json={"username": username, "password": password}) as r:
        assert r.status == 401
        assert "Set-Cookie" not in r.headers
        assert (await r.json()) == {"error": "invalid username or password"}


async def test_requests_without_a_valid_token_are_refused(web):
    signer = web.daemon.web.gate.signer
    expired, _ = signer.issue(web.ids["alice"], "alice", "agent", now=time.time() - signer.ttl_s - 5)
    forged = TokenSigner(b"not-the-server-secret-at-all!!!!", 3600).issue(web.ids["adam"], "adam", "admin",
                                                                          time.time())[0]
    for headers in ({}, web.auth(expired), web.auth(forged), web.auth("garbage")):
        async with web.http.get(web.base + "/api/me", headers=headers) as r:
            assert r.status == 401
        async with web.http.get(web.base + "/api/calls", headers=headers) as r:
            assert r.status == 401


async def test_a_token_in_the_url_is_never_accepted(web):
    token = await web.login("alice")
    async with web.http.get(web.base + f"/api/me?token={token}") as r:
        assert r.status == 401
    # the upgrade carries no credentials the server reads: it waits for an auth message instead
    ws = await web.http.ws_connect(web.base + f"/ws?token={token}")
    await ws.send_json({"type": "ping"})
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4401


async def test_roles_are_enforced_on_the_server(web):
    agent = await web.login("alice")
    sup = await web.login("sue")
    admin = await web.login("adam")
    async with web.http.get(web.base + "/api/agents", headers=web.auth(agent)) as r:
        assert r.status == 403
    for token in (sup, admin):
        async with web.http.get(web.base + "/api/agents", headers=web.auth(token)) as r:
            assert r.status == 200
            names = {a["username"] for a in (await r.json())["agents"]}
            assert names == {"alice", "bob", "sue", "adam"}


async def test_a_disabled_account_loses_its_token(web):
    from sqlalchemy import update

    from cti.db.tables import agents

    token = await web.login("bob")
    async with web.daemon.engine.begin() as conn:
        await conn.execute(update(agents).where(agents.c.username == "bob").values(active=False))
    async with web.http.get(web.base + "/api/me", headers=web.auth(token)) as r:
        assert r.status == 401
    async with web.http.post(web.base + "/api/login", json={"username": "bob", "password": PASSWORD}) as r:
        assert r.status == 401


async def test_logins_are_rate_limited_per_username_and_address(web):
    for _ in range(5):
        async with web.http.post(web.base + "/api/login", json={"username": "alice", "password": "nope-nope"}) as r:
            assert r.status == 401
    async with web.http.post(web.base + "/api/login", json={"username": "alice", "password": PASSWORD}) as r:
        assert r.status == 429  # even the right password waits
        assert int(r.headers["Retry-After"]) > 0
    async with web.http.post(web.base + "/api/login", json={"username": "bob", "password": PASSWORD}) as r:
        assert r.status == 200  # another account from the same address is not locked out


async def test_websocket_refuses_a_foreign_origin(web):
    token = await web.login("alice")
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await web.http.ws_connect(web.base + "/ws", headers=web.auth(token), origin="https://evil.example")
    assert exc.value.status == 403
    ws = await web.http.ws_connect(web.base + "/ws", headers=web.auth(token), origin=web.base)  # its own origin
    assert (await ws.receive_json(timeout=5))["type"] == "hello"
    await ws.close()


async def test_configured_console_origins_are_allowed(settings):
    from cti.app import Daemon

    s = settings.replace("ami", enabled=False).replace("agi", port=0).replace(
        "http", port=0, console_origins=("https://console.example.com",))
    d = Daemon(s)
    await d.start()
    try:
        from test_web_support import seed

        await seed(d)
        base = f"http://127.0.0.1:{d.web.port}"
        async with aiohttp.ClientSession() as http:
            async with http.post(base + "/api/login", json={"username": "alice", "password": PASSWORD}) as r:
                token = (await r.json())["token"]
            ws = await http.ws_connect(base + "/ws", headers={"Authorization": f"Bearer {token}"},
                                       origin="https://console.example.com")
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
            await ws.close()
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await http.ws_connect(base + "/ws", headers={"Authorization": f"Bearer {token}"},
                                      origin="https://console.example.com.evil.example")
    finally:
        await d.stop()


async def test_websocket_first_message_auth(web):
    token = await web.login("alice")
    ws = await web.http.ws_connect(web.base + "/ws")
    await ws.send_json({"type": "auth", "token": token})
    assert (await ws.receive_json(timeout=5))["type"] == "hello"
    await ws.close()

    ws = await web.http.ws_connect(web.base + "/ws")
    await ws.send_json({"type": "auth", "token": token[:-3] + "xyz"})
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4401

    ws = await web.http.ws_connect(web.base + "/ws")
    await ws.send_str("hello?")
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4401


async def test_websocket_upgrade_with_a_bad_token_is_refused(web):
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await web.http.ws_connect(web.base + "/ws", headers=web.auth("bad.token"))
    assert exc.value.status == 401


async def test_state_changing_requests_from_a_foreign_origin_are_refused(web):
    token = await web.login("alice")
    async with web.http.post(web.base + "/api/calls/wrapup", headers={**web.auth(token), "Origin": "https://evil.example"},
                             json={"uniqueid": "x", "disposition": "resolved"}) as r:
        assert r.status == 403
