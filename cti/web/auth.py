"""Login, tokens on requests, roles and origins: the server-side gatekeeping of the console."""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import async_sessionmaker

from cti.agents.accounts import Agent, credentials, get_agent
from cti.agents.passwords import verify_password
from cti.netaddr import Network
from cti.web.clientaddr import client_address
from cti.web.loginguard import Busy, PasswordChecks
from cti.web.ratelimit import LoginLimiter
from cti.web.tokens import BadToken, Claims, TokenSigner
from cti.web.wsguard import WsGuard

log = structlog.get_logger(__name__)

COOKIE = "cti_token"
SUPERVISORS = ("supervisor", "admin")


@dataclass
class Gate:
    """Everything authentication needs, built once by the web server."""

    signer: TokenSigner
    limiter: LoginLimiter  # or cti.cluster.security.RedisLoginLimiter (async methods)
    sessionmaker: async_sessionmaker
    console_origins: tuple[str, ...]
    #: cti.web.sessions.SessionWatch: a logout ends every session of the account (None: only the cookie)
    sessions: Any = None
    clock: Callable[[], float] = time.time
    #: the turn of argon2 checks (http.login_hash_concurrency)
    checks: PasswordChecks = field(default_factory=PasswordChecks)
    #: reverse proxies whose X-Forwarded-For names the client (http.trusted_proxies)
    trusted_proxies: tuple[Network, ...] = ()
    #: websockets waiting for their auth message, message budgets (http.max_pending_websockets, ws_message_rate)
    ws_guard: WsGuard = field(default_factory=WsGuard)

    # -- tokens ---------------------------------------------------------------------------
    @staticmethod
    def token_of(request: web.Request) -> str | None:
        """The bearer token from the Authorization header, else the cookie. Never from the URL."""
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            return header[7:].strip() or None
        return request.cookies.get(COOKIE) or None

    async def agent_for_token(self, token: str | None) -> tuple[Agent, Claims]:
        """The active account behind a token; HTTPUnauthorized otherwise."""
        if not token:
            raise _error(web.HTTPUnauthorized, "login required")
        try:
            claims = self.signer.verify(token, self.clock())
        except BadToken as exc:
            log.info("auth.bad_token", reason=str(exc))
            raise _error(web.HTTPUnauthorized, "invalid or expired token") from None
        async with self.sessionmaker() as session:
            agent = await get_agent(await session.connection(), claims.agent_id)
        if agent is None or not agent.active or agent.username != claims.username:
            raise _error(web.HTTPUnauthorized, "account disabled")
        if agent.role != claims.role:  # role changed since login: log in again
            raise _error(web.HTTPUnauthorized, "role changed, log in again")
        if agent.token_version != claims.version:  # logged out, or a new password, since this token
            raise _error(web.HTTPUnauthorized, "session ended, log in again")
        return agent, claims

    async def require(self, request: web.Request, *roles: str) -> Agent:
        """The caller's account, if its role is one of ``roles`` (any role when none given)."""
        agent, _ = await self.agent_for_token(self.token_of(request))
        if roles and agent.role not in roles:
            raise _error(web.HTTPForbidden, f"needs role {' or '.join(roles)}")
        return agent

    # -- origins --------------------------------------------------------------------------
    def origin_allowed(self, request: web.Request) -> bool:
        """A browser's Origin must be the console's own or one of http.console_origins.

        Requests without Origin (non-browser clients with a bearer header) are allowed: the
        cross-site hijacking this prevents is done by browsers, and browsers always send it.
        """
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        origin = origin.rstrip("/").lower()
        if origin in (o.rstrip("/").lower() for o in self.console_origins):
            return True
        own = f"{request.scheme}://{request.host}".lower()
        return origin == own

    # -- login ----------------------------------------------------------------------------
    async def login(self, request: web.Request) -> web.Response:
        if not self.origin_allowed(request):
            raise _error(web.HTTPForbidden, "origin not allowed")
        try:
            body = await request.json()
            username = str(body["username"]).strip()[:64]
            password = str(body["password"])
        except (ValueError, KeyError, TypeError):
            raise _error(web.HTTPBadRequest, "expected JSON {username, password}") from None
        address = client_address(request, self.trusted_proxies)
        now = self.clock()
        try:
            self.checks.admit(address)  # a storm from one address is turned away before any work
        except Busy:
            log.warning("auth.login_busy", address=address)
            raise _error(web.HTTPTooManyRequests, "too many logins in progress from this address, retry",
                         headers={"Retry-After": "1"}) from None
        # counted before the password check: parallel attempts cannot all slip through
        wait = await _maybe(self.limiter.begin(username, address, now))
        if wait > 0:
            log.warning("auth.login_throttled", username=username, address=address)
            raise _error(web.HTTPTooManyRequests, "too many failed logins, try again later",
                         headers={"Retry-After": str(int(wait) + 1)})
        found: Any = None

        async def lookup() -> Any:
            async with self.sessionmaker() as session:
                return await credentials(await session.connection(), username)

        def check(row: Any) -> bool:
            nonlocal found
            found = row
            return verify_password(row[1] if row is not None else None, password)

        try:
            ok = await self.checks.run(address, lookup, check)
        except Busy:  # no password was checked: nothing more to count
            log.warning("auth.login_busy", address=address)
            raise _error(web.HTTPTooManyRequests, "too many logins in progress from this address, retry",
                         headers={"Retry-After": "1"}) from None
        agent = found[0] if found is not None else None
        if not ok or agent is None or not agent.active:
            await _maybe(self.limiter.failed(username, address, now))
            log.info("auth.login_failed", username=username, address=address)
            raise _error(web.HTTPUnauthorized, "invalid username or password")
        await _maybe(self.limiter.succeeded(username, address))
        token, claims = self.signer.issue(agent.id, agent.username, agent.role, now, agent.token_version)
        log.info("auth.login", username=agent.username, role=agent.role)
        resp = web.json_response({"token": token, "expires_at": claims.expires_at, "agent": agent.public()})
        resp.set_cookie(COOKIE, token, max_age=self.signer.ttl_s, path="/", httponly=True, samesite="Strict",
                        secure=request.secure)
        return resp

    async def logout(self, request: web.Request) -> web.Response:
        """Clear the cookie; with a valid token, end every session of its account (all nodes, websockets)."""
        token = self.token_of(request)
        if token is not None and self.sessions is not None:
            if not self.origin_allowed(request):
                raise _error(web.HTTPForbidden, "origin not allowed")
            try:
                agent, _ = await self.agent_for_token(token)
            except web.HTTPUnauthorized:
                agent = None
            if agent is not None:
                await self.sessions.revoke(agent.id)
                log.info("auth.logout", username=agent.username)
        resp = web.json_response({"ok": True})
        resp.del_cookie(COOKIE, path="/")
        return resp


async def _maybe(value: Any) -> Any:
    """The limiter's answer: the in-process one is synchronous, the Redis one async."""
    return await value if inspect.isawaitable(value) else value


def _error(cls: type[web.HTTPException], message: str, **kw: Any) -> web.HTTPException:
    import json

    return cls(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json", **kw)
