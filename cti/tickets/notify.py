"""Delivery of outbox notifications: e-mail over SMTP (smtplib, in a thread) and webhooks (aiohttp POST)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import aiohttp
import structlog

log = structlog.get_logger(__name__)


class DeliveryError(RuntimeError):
    """A notification could not be delivered (the outbox retries it)."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str = ""
    port: int = 25
    sender: str = "cti@localhost"
    username: str = ""
    password: str = ""
    starttls: bool = False
    timeout_s: float = 10.0


def render_text(subject: str, body: dict[str, Any]) -> str:
    """A plain-text e-mail body for an event."""
    lines = [subject, ""]
    lines += [f"{k}: {v}" for k, v in body.items() if v is not None and v != ""]
    return "\n".join(lines) + "\n"


class Notifier:
    """Sends one notification on its channel; raises on failure (the outbox retries)."""

    def __init__(self, smtp: SmtpSettings | None = None, *, webhook_timeout_s: float = 10.0) -> None:
        self.smtp = smtp or SmtpSettings()
        self.webhook_timeout_s = webhook_timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def send(self, channel: str, recipient: str, subject: str, body: dict[str, Any]) -> None:
        if channel == "email":
            await self.send_email(recipient, subject, body)
        elif channel == "webhook":
            await self.post_webhook(recipient, body)
        else:
            raise DeliveryError(f"unknown channel {channel!r}")

    async def send_email(self, to: str, subject: str, body: dict[str, Any]) -> None:
        if not self.smtp.host:
            raise DeliveryError("no SMTP host configured")
        msg = EmailMessage()
        msg["From"] = self.smtp.sender
        msg["To"] = to
        msg["Subject"] = " ".join(subject.split())[:200]
        msg.set_content(render_text(subject, body))
        await asyncio.to_thread(self._smtp_send, msg)
        log.info("notify.email_sent", to=to, topic=body.get("event"))

    def _smtp_send(self, msg: EmailMessage) -> None:
        s = self.smtp
        with smtplib.SMTP(s.host, s.port, timeout=s.timeout_s) as client:
            if s.starttls:
                client.starttls(context=ssl.create_default_context())
            if s.username:
                client.login(s.username, s.password)
            client.send_message(msg)

    async def post_webhook(self, url: str, body: dict[str, Any]) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.webhook_timeout_s))
        async with self._session.post(url, json=body) as resp:
            if resp.status >= 300:
                raise DeliveryError(f"webhook answered HTTP {resp.status}")
        log.info("notify.webhook_sent", url=url.split("?")[0], topic=body.get("event"))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
