"""End to end on real parts: SIPp callers and agents' SIPp phones, a real Asterisk 22.10.1 running our
asterisk-config/ + dialplans/, and the real cti daemon (FastAGI, AMI, HTTP/websocket) on SQLite.

Each test asserts what Asterisk did (AMI events seen by a separate AMI session, recordings,
channel variables) *and* what cti recorded (the calls row, the pops on the agents' websockets).
See tests/sip_world.py for the set-up; ``tests/run.sh`` builds Asterisk and sets CTI_ASTERISK_BIN.
"""

from __future__ import annotations

import asyncio
import csv
import re
import shutil
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import aiohttp
import pytest
from sqlalchemy import select

from asterisk_pbx import Ami, Pbx, ami_secret, requires_asterisk, running_pbx
from sip_world import (AGENT_PASSWORD, AGENTS, Console, Phone, best_match, cti, cti_env, pbx_edit, place_call,
                       read_wav, rms, until)
from cti.app import Daemon
from cti.config import Settings, load_settings
from cti.db.tables import calls, customers

pytestmark = [
    pytest.mark.asterisk,
    requires_asterisk,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp (Debian sip-tester) is not installed"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                       reason="espeak-ng and sox are needed for the greetings"),
    pytest.mark.timeout(180),
]

#: The customers (CSV as `cti customers import` takes it). Spellings of their numbers are tried below.
CUSTOMERS = [
    # phones, family, given, title, language, vip, products, key
    ("13800138000", "王", "伟", "先生", "zh", "no", "mobile:P50 Pro:2026-05-01", "wang"),
    ("021-6123-4567", "张", "华", "女士", "zh", "no", "appliances:Fridge F1:2025-11-02", "zhang"),
    ("13700002222", "Smith", "John", "Mr", "en", "yes", "mobile:X9:2026-01-15", "vip"),
    ("13912345678", "李", "明", "先生", "zh", "no", "appliances:Washer W2:2026-02-03", "complainer"),
    ("13700001111", "赵", "雷", "先生", "zh", "no", "appliances:Oven O3:2026-03-04", "normal"),
    ("13500135000", "孙", "悦", "女士", "zh", "no", "mobile:Y7:2026-04-05", "hostile"),
]


@dataclass
class Seed:
    db_url: str
    sounds: Path
    customer_ids: dict[str, int]
    agent_ids: dict[str, int]
    ticket_id: int


@pytest.fixture(scope="module")
def pbx() -> Iterator[Pbx]:
    with running_pbx("cti-sip-", edit=pbx_edit) as running:
        yield running


@pytest.fixture(scope="module")
def seed(pbx: Pbx, tmp_path_factory: pytest.TempPathFactory) -> Seed:
    """cti's database, filled with the `cti` command as an admin would; greetings into the PBX's sounds."""
    work = tmp_path_factory.mktemp("sip-cti")
    sounds = pbx.data / "sounds" / "cti"
    sounds.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite+aiosqlite:///{work / 'cti.db'}"
    env = cti_env(db_url, sounds)
    cti(env, "db", "init")
    cti(env, "greetings", "build")
    table = work / "customers.csv"
    with table.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["phones", "family_name", "given_name", "title", "language", "vip", "products"])
        for row in CUSTOMERS:
            out.writerow(row[:7])
    cti(env, "customers", "import", str(table))
    ids = {}
    for row in CUSTOMERS:
        shown = cti(env, "customers", "show", row[0].replace("-", ""))
        ids[row[7]] = int(re.match(r"#(\d+)", shown).group(1))
    agent_ids = {}
    for username, endpoint, queue, experienced in AGENTS:
        made = cti(env, "agents", "add", username, "--interface", f"PJSIP/{endpoint}", "--skill", queue,
                   "--password", AGENT_PASSWORD, "--name", f"Agent {endpoint}", *(["--experienced"] if experienced else []))
        agent_ids[username] = int(re.search(r"\(id (\d+)", made).group(1))
    cti(env, "agents", "add", "boss", "--role", "supervisor", "--password", AGENT_PASSWORD, "--name", "Boss")
    made = cti(env, "tickets", "create", "--customer", str(ids["complainer"]), "--description",
               "Washer leaks after the repair", "--product-line", "appliances", "--owner", "boss")
    ticket_id = int(re.search(r"ticket #(\d+) created", made).group(1))
    return Seed(db_url, sounds, ids, agent_ids, ticket_id)


@pytest.fixture(scope="module")
def phones(pbx: Pbx, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Phone]]:
    """Every agent's SIP phone, registered and answering (ring 1 s, talk 3 s)."""
    work = tmp_path_factory.mktemp("sip-phones")
    out = {username: Phone(endpoint, pbx, work) for username, endpoint, _q, _e in AGENTS}
    try:
        for phone in out.values():
            phone.start()
        yield out
    finally:
        for phone in out.values():
            phone.stop()


def settings_for(pbx: Pbx, seed: Seed) -> Settings:
    s = load_settings(None, env={})
    s = s.replace("database", url=seed.db_url)
    s = s.replace("ami", host="127.0.0.1", port=pbx.ami_port, username="cti", secret=ami_secret(),
                  reconnect_min=0.1, reconnect_max=1.0, ping_interval=1.0, ping_timeout=1.0)
    s = s.replace("agi", host="127.0.0.1", port=pbx.agi_port)
    s = s.replace("http", host="127.0.0.1", port=0)
    s = s.replace("greeting", sounds_dir=str(seed.sounds))
    return s.replace("routing", hours={str(d): "00:00-23:59" for d in range(7)})


@dataclass
class World:
    pbx: Pbx
    seed: Seed
    daemon: Daemon
    ami: Ami
    http: aiohttp.ClientSession
    phones: dict[str, Phone]
    workdir: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.daemon.web.port}"

    async def console(self, username: str) -> Console:
        async with self.http.post(self.base + "/api/login", json={"username": username, "password": AGENT_PASSWORD}) as r:
            assert r.status == 200, await r.text()
            token = (await r.json())["token"]
        ws = await self.http.ws_connect(self.base + "/ws", headers={"Authorization": f"Bearer {token}"})
        console = Console(username, token, ws, self.http, self.base)
        console.start()
        await until(lambda: any(m.get("type") == "hello" for m in console.messages), 5, "hello")
        return console

    async def ready(self, *usernames: str) -> dict[str, Console]:
        """Agents who log in and press Ready (cti does QueueAdd of their phones)."""
        out = {}
        for name in usernames:
            out[name] = console = await self.console(name)
            await console.state("ready")
        for name in usernames:
            endpoint = next(e for u, e, _q, _x in AGENTS if u == name)
            queue = next(q for u, _e, q, _x in AGENTS if u == name)
            await until(lambda: f"PJSIP/{endpoint}" in self.pbx.cli(f"queue show {queue}"), 10, f"{name} in {queue}")
        return out

    async def call_row(self, uniqueid: str, until_: Any = lambda r: r["ended_at"] is not None, timeout: float = 15) -> Any:
        async def fetch() -> Any:
            async with self.daemon.engine.connect() as conn:
                row = (await conn.execute(select(calls).where(calls.c.uniqueid == uniqueid))).mappings().first()
            return row if row is not None and until_(row) else None
        return await until(fetch, timeout, f"calls row of {uniqueid}")

    async def greeting_file(self, key: str) -> Path:
        async with self.daemon.engine.connect() as conn:
            name = (await conn.execute(select(customers.c.greeting).where(customers.c.id == self.seed.customer_ids[key]))).scalar_one()
        assert name, f"customer {key} has no greeting"
        return self.seed.sounds / f"{name}.wav"

    def heard(self, uniqueid: str) -> Path:
        return self.pbx.root / "spool" / "monitor" / f"heard-{uniqueid}.wav"


async def start_daemon(pbx: Pbx, seed: Seed) -> Daemon:
    daemon = Daemon(settings_for(pbx, seed))
    await daemon.start()
    await daemon.ami.wait_ready(15)
    return daemon


@pytest.fixture
async def world(pbx: Pbx, seed: Seed, phones: dict[str, Phone], tmp_path: Path) -> AsyncIterator[World]:
    daemon = await start_daemon(pbx, seed)
    ami = Ami()
    login = await ami.connect(pbx.ami_port, "cti", ami_secret())
    assert login.get("Response") == "Success", login
    http = aiohttp.ClientSession()
    w = World(pbx, seed, daemon, ami, http, phones, tmp_path)
    try:
        yield w
    finally:
        pbx.cli("channel request hangup all")
        for queue in ("complaints", "appliances", "mobile"):
            for interface in re.findall(r"(PJSIP/\d+)", pbx.cli(f"queue show {queue}")):
                pbx.cli(f"queue remove member {interface} from {queue}")
        await http.close()
        await ami.close()
        await w.daemon.stop()
        for _ in range(50):
            if "0 active channels" in pbx.cli("core show channels count"):
                break
            await asyncio.sleep(0.1)


def event(name: str, **fields: str):
    return lambda e: e.get("Event") == name and all(e.get(k) == v for k, v in fields.items())


# ------------------------------------------------------------------------------------------- known callers


@pytest.mark.parametrize("spelling, key, queue, priority", [
    ("+8613800138000", "wang", "mobile", "0"),     # E.164
    ("008613800138000", "wang", "mobile", "0"),    # international prefix
    ("13800138000", "wang", "mobile", "0"),        # national mobile
    ("02161234567", "zhang", "appliances", "0"),   # Shanghai landline with trunk prefix
])
async def test_known_caller_hears_the_greeting_and_pops_on_the_answering_agent_only(
        world: World, spelling: str, key: str, queue: str, priority: str) -> None:
    everyone = await world.ready("mobile1", "mobile2", "appl1", "appl2")
    idle = await world.console("compl1")  # logged in, not ready: never rung
    caller = await place_call(world.pbx, world.workdir, spelling, name="Wang Wei")
    join = await world.ami.wait_for(event("QueueCallerJoin", CallerIDNum=spelling), timeout=20)
    uniqueid = join["Uniqueid"]
    assert join["Queue"] == queue
    connect = await world.ami.wait_for(event("AgentConnect", Uniqueid=uniqueid), timeout=20)
    got = await world.ami.action("Getvar", Channel=join["Channel"], Variable="QUEUE_PRIO")
    assert got.get("Value") == priority
    assert await caller.done() == 0, caller.errors()
    # what cti recorded
    row = await world.call_row(uniqueid, lambda r: r["outcome"] is not None)
    assert row["customer_id"] == world.seed.customer_ids[key]
    assert row["queue"] == queue and row["outcome"] == "answered"
    answering = next(u for u, e, _q, _x in AGENTS if f"PJSIP/{e}" == connect["Interface"])
    assert row["agent_id"] == world.seed.agent_ids[answering]
    assert row["agent_interface"] == connect["Interface"]
    assert row["wait_s"] is not None and 0.5 <= row["wait_s"] <= 10   # about the 1 s ring
    assert row["talk_s"] is not None and 2.0 <= row["talk_s"] <= 6     # the phone hangs up after 3 s
    # exactly one pop for this call, on the answering agent's websocket only
    await until(lambda: everyone[answering].pops(uniqueid), 5, "the pop")
    pops = {name: len(c.pops(uniqueid)) for name, c in {**everyone, "compl1": idle}.items()}
    assert pops == {name: int(name == answering) for name in pops}, pops
    pop = everyone[answering].pops(uniqueid)[0]
    assert pop["customer"]["id"] == world.seed.customer_ids[key]
    # the caller heard the personalized greeting: the recording of the caller's leg contains the
    # greeting file's samples (normalized cross-correlation), at the level it was recorded
    greeting, rate = read_wav(await world.greeting_file(key))
    heard, heard_rate = read_wav(world.heard(uniqueid))
    assert rate == heard_rate == 8000
    score, at = best_match(heard, greeting)
    assert score > 0.9, f"greeting not found in what the caller heard (best correlation {score:.2f})"
    segment = heard[at:at + len(greeting)]
    assert abs(20 * math.log10(rms(segment) / rms(greeting))) < 3
    assert at / rate < 3.0  # it plays right after the answer and the FastAGI decision
