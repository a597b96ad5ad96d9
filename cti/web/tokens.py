"""Signed, expiring session tokens: ``base64url(json claims) "." base64url(HMAC-SHA256)``. Pure.

Claims: ``sub`` (agent id), ``usr``, ``role``, ``iat``, ``exp`` (epoch seconds), ``ver`` (the
account's ``agents.token_version`` at login: a logout or new password increments it, which ends
every older token; missing in tokens from before it existed, read as 0). The secret is
``http.token_secret``; when that is empty the web server draws a random one at start-up, so
tokens do not survive a restart (agents log in again). Tokens travel in the ``Authorization:
Bearer`` header, the HttpOnly ``cti_token`` cookie or the websocket's first message, never in a URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass


class BadToken(ValueError):
    """Malformed, forged or expired; the message says which (for logs, never for the client)."""


@dataclass(frozen=True)
class Claims:
    agent_id: int
    username: str
    role: str
    issued_at: float
    expires_at: float
    version: int = 0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    MAX_LEN = 2048

    def __init__(self, secret: bytes, ttl_s: int) -> None:
        if len(secret) < 16:
            raise ValueError("token secret: at least 16 bytes")
        self._key = hashlib.sha256(b"cti-session-token\0" + secret).digest()
        self.ttl_s = ttl_s

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())

    def issue(self, agent_id: int, username: str, role: str, now: float, version: int = 0) -> tuple[str, Claims]:
        claims = Claims(agent_id, username, role, float(int(now)), float(int(now) + self.ttl_s), version)
        body = _b64(json.dumps({"sub": agent_id, "usr": username, "role": role, "iat": int(claims.issued_at),
                                "exp": int(claims.expires_at), "ver": version}, separators=(",", ":")).encode())
        return f"{body}.{self._mac(body)}", claims

    def verify(self, token: str, now: float) -> Claims:
        if not token or len(token) > self.MAX_LEN or token.count(".") != 1:
            raise BadToken("malformed")
        body, mac = token.split(".")
        try:
            body.encode("ascii")
            mac.encode("ascii")
        except UnicodeEncodeError:
            raise BadToken("malformed") from None
        if not hmac.compare_digest(mac, self._mac(body)):
            raise BadToken("bad signature")
        try:
            data = json.loads(_unb64(body))
            claims = Claims(int(data["sub"]), str(data["usr"]), str(data["role"]), float(data["iat"]),
                            float(data["exp"]), int(data.get("ver", 0)))
        except (ValueError, KeyError, TypeError):
            raise BadToken("malformed claims") from None
        if now >= claims.expires_at:
            raise BadToken("expired")
        return claims
