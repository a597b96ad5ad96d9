"""The world of the end-to-end tests: the demo's data in a fresh database, the real daemon (FastAGI, AMI,
HTTP) and the simulated PBX talking to each other over loopback sockets, with a fast simulated clock.

No tests here; test_e2e_*.py import it. Nothing is injected on the bus: every pop, state and record
comes from the sim's FastAGI connections and AMI events.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiohttp
from sqlalchemy import select

from cti.app import Daemon
from cti.config import Settings
from cti.customers.callerid import normalize
from cti.db.engine import create_engine
from cti.db.schema import init_schema
from cti.db.tables import calls, customer_phones
from cti.demo.data import AGENT_PASSWORD, DemoCustomer, demo_customers, roster
from cti.demo.seed import seed_world
from cti.demo.world import DemoOptions, demo_settings, free_port, sim_config
from cti.greeting.batch import synthesize_backlog
from cti.sim.pbx import SimPbx

SPEED = 20.0
TTS = shutil.which("espeak-ng") is not None and shutil.which("sox") is not None


@dataclass
class World:
    daemon: Daemon
    pbx: SimPbx
    http: aiohttp.ClientSession
    people: list[DemoCustomer]
    settings: Settings

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.daemon.web.port}"

    def customer(self, pred: Callable[[DemoCustomer], bool]) -> DemoCustomer:
        return next(p for p in self.people if pred(p))

    async def customer_id(self, person: DemoCustomer) -> int:
        e164 = normalize(person.caller_number, "CN").e164
        async with self.daemon.engine.connect() as conn:
            return int((await conn.execute(select(customer_phones.c.customer_id)
                                           .where(customer_phones.c.e164 == e164))).scalar_one())

    async def login(self, username: str, password: str = AGENT_PASSWORD) -> str:
        async with self.http.post(self.base + "/api/login", json={"username": username, "password": password}) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["token"]

    async def agent(self, username: str) -> "Console":
        """An agent logged into the console with its websocket open."""
        token = await self.login(username)
        ws = await self.http.ws_connect(self.base + "/ws", headers={"Authorization": f"Bearer {token}"})
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "hello"
        return Console(self, token, ws)

    async def call_row(self, uniqueid: str, until: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        """The calls row of ``uniqueid`` once ``until(row)`` holds (the recorder writes behind)."""
        deadline = time.monotonic() + timeout
        while True:
            async with self.daemon.engine.connect() as conn:
                row = (await conn.execute(select(calls).where(calls.c.uniqueid == uniqueid))).mappings().first()
            if row is not None and until(row):
                return row
            if time.monotonic() > deadline:
                raise AssertionError(f"calls row of {uniqueid}: {dict(row) if row else None}")
            await asyncio.sleep(0.05)


@dataclass
class Console:
    world: World
    token: str
    ws: aiohttp.ClientWebSocketResponse

    async def state(self, state: str) -> None:
        """The console's Ready / Pause / Leave buttons (QueueAdd/QueuePause/QueueRemove on the PBX)."""
        async with self.world.http.post(self.world.base + "/api/agent/state", json={"state": state},
                                        headers={"Authorization": f"Bearer {self.token}"}) as r:
            assert r.status == 200, await r.text()

    async def next(self, kind: str, timeout: float = 10.0, pred: Callable[[dict], bool] = lambda m: True) -> dict:
        async def loop() -> dict[str, Any]:
            while True:
                msg = await self.ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise AssertionError(f"websocket ended: {msg.type} {msg.data!r}")
                data = json.loads(msg.data)
                if data["type"] == kind and pred(data):
                    return data
        return await asyncio.wait_for(loop(), timeout)


async def until(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``check()`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.02)


async def open_world(settings: Settings, tmp_path: Path, *, greetings: bool = True):
    """Seed, synthesize, start sim + daemon; an async generator yielding a :class:`World`."""
    people = demo_customers()
    team = roster(0)
    engine = create_engine(settings.database.url)
    try:
        await init_schema(engine)
        await seed_world(engine, people, team)
    finally:
        await engine.dispose()
    if greetings and TTS:
        await synthesize_backlog(settings)
    opts = DemoOptions(tmp_path, speed=SPEED, ring_seconds=0.2, talk_seconds=0.5, seed=7)
    agi_port = free_port()
    config = sim_config(opts, team, people, agi_port=agi_port)
    async with SimPbx(config) as pbx:
        s = demo_settings(opts, ami_port=pbx.ami_port, agi_port=agi_port, base=settings)
        s = s.replace("ami", reconnect_min=0.05, reconnect_max=0.2).replace("http", port=0)
        daemon = Daemon(s)
        await daemon.start()
        try:
            await daemon.ami.wait_ready()
            async with aiohttp.ClientSession() as http:
                yield World(daemon, pbx, http, people, s)
        finally:
            await daemon.stop()
