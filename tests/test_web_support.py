"""Shared world for the web tests: the real Daemon (AMI off, FastAGI and HTTP on port 0) on SQLite and
PostgreSQL, accounts with argon2 hashes, a customer base, and websocket helpers over loopback.

No tests here; the test_web_*/test_auth* modules import the fixtures.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, AsyncIterator

import aiohttp
import pytest
from sqlalchemy import insert

from cti.agents.accounts import add_agent
from argon2 import PasswordHasher
from cti.app import Daemon
from cti.config import Settings
from cti.customers.records import customer_from_fields
from cti.customers.repository import add_customer
from cti.db.tables import calls, tickets

PASSWORD = "correct horse battery"
# One argon2id hash for every test account, with low cost parameters: verification reads the parameters
# from the hash, so the login path is the real one, only cheaper (cti's own hashes use argon2-cffi's defaults).
_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)

ACCOUNTS = [
    ("alice", "agent", "PJSIP/1001", "Alice 王", "zh"),
    ("bob", "agent", "PJSIP/1002", "Bob", "en"),
    ("sue", "supervisor", None, "Sue", "en"),
    ("adam", "admin", None, "Adam", "en"),
]


@dataclass
class Web:
    daemon: Daemon
    base: str
    http: aiohttp.ClientSession
    customer_id: int
    ids: dict[str, int]

    async def login(self, username: str, password: str = PASSWORD) -> str:
        async with self.http.post(self.base + "/api/login", json={"username": username, "password": password}) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["token"]

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def ws(self, token: str, **kw: Any) -> aiohttp.ClientWebSocketResponse:
        ws = await self.http.ws_connect(self.base + "/ws", headers=self.auth(token), **kw)
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "hello"
        return ws

    def ring(self, interface: str, uniqueid: str, customer_id: int | None, **extra: Any) -> None:
        self.daemon.bus.publish("call.ringing", {
            "server": "default", "uniqueid": uniqueid, "linkedid": uniqueid, "caller_number": "13800138000",
            "caller_name": "", "caller_e164": "+8613800138000", "customer_id": customer_id, "queue": "appliances",
            "interface": interface, "member_name": interface, "priority": 5, "route": "product", "lang": "zh",
            "dialed": "4008001234", "at": time.time(), **extra})

    def follow(self, topic: str, interface: str | None, uniqueid: str, **extra: Any) -> None:
        self.daemon.bus.publish(topic, {"server": "default", "uniqueid": uniqueid, "interface": interface,
                                        "at": time.time(), **extra})


async def next_of(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next message of type ``kind`` (others skipped)."""
    async def loop() -> dict[str, Any]:
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"socket ended: {msg.type} {msg.data!r} {msg.extra!r}")
            data = json.loads(msg.data)
            if data["type"] == kind:
                return data
    return await asyncio.wait_for(loop(), timeout)


async def until_pong(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """Everything the server sent before answering a ping (the server answers in order)."""
    await ws.send_str('{"type":"ping"}')
    seen = []
    while True:
        data = await ws.receive_json(timeout=5)
        if data["type"] == "pong":
            return seen
        seen.append(data)


async def seed(daemon: Daemon) -> tuple[int, dict[str, int]]:
    today = date.today()
    ids = {}
    async with daemon.engine.begin() as conn:
        for username, role, iface, name, lang in ACCOUNTS:
            ids[username] = await add_agent(conn, username, _HASH, display_name=name, role=role, interface=iface,
                                            language=lang, skills={"appliances": 0} if iface else None)
        record = customer_from_fields({
            "family_name": "王", "given_name": "伟", "title": "先生", "language": "zh", "vip": "yes",
            "phones": "13800138000",
            "products": f"appliances:美的微波炉 M3:{(today - timedelta(days=20)).isoformat()};"
                        f"mobile:Phone X:{(today - timedelta(days=400)).isoformat()}"}, "CN")
        cid = await add_customer(conn, record)
        now = datetime.now(timezone.utc)
        await conn.execute(insert(tickets).values(customer_id=cid, category="complaint", product_line="appliances",
                                                  description="微波炉不加热", status="open",
                                                  sla_deadline=now + timedelta(hours=4), created_at=now, updated_at=now))
        await conn.execute(insert(calls).values(server="default", uniqueid="old.1", customer_id=cid, queue="appliances",
                                                started_at=now - timedelta(days=3), outcome="answered",
                                                disposition="follow_up", notes="客户说微波炉不加热，已约上门"))
    return cid, ids


@pytest.fixture
async def web(settings: Settings) -> AsyncIterator[Web]:
    s = settings.replace("ami", enabled=False).replace("agi", port=0).replace("http", port=0)
    daemon = Daemon(s)
    await daemon.start()
    try:
        cid, ids = await seed(daemon)
        async with aiohttp.ClientSession() as http:
            yield Web(daemon, f"http://127.0.0.1:{daemon.web.port}", http, cid, ids)
    finally:
        await daemon.stop()
