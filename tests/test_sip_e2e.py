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
import socket
import time
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
    always = {str(d): "00:00-23:59" for d in range(7)}
    s = s.replace("outbound", center_hours=always, customer_hours=always)
    return s.replace("routing", hours=always)


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

    def press_in_the_menu(self, digit: str) -> tuple[tuple[int, str], ...]:
        """One key press in the IVR menu prompt, just after the generic greeting (a press during the
        greeting is ignored by Playback, and the pcap's fixed RTP timestamps make a repeat a duplicate)."""
        generic, rate = read_wav(self.seed.sounds / "greet-generic-zh.wav")
        return ((int(1000 * len(generic) / rate) + 1200, digit),)

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


# ------------------------------------------------------------------------------------------- IVR


async def test_unknown_caller_chooses_the_queue_with_an_rfc2833_key_press(world: World) -> None:
    consoles = await world.ready("mobile1")
    number = "13600136000"  # nobody's number: the IVR menu asks
    caller = await place_call(world.pbx, world.workdir, number, keys=world.press_in_the_menu("2"))
    join = await world.ami.wait_for(event("QueueCallerJoin", CallerIDNum=number), timeout=30)
    assert join["Queue"] == "mobile"
    uniqueid = join["Uniqueid"]
    assert (await world.ami.action("Getvar", Channel=join["Channel"], Variable="CTI_DIGIT")).get("Value") == "2"
    await world.ami.wait_for(event("AgentConnect", Uniqueid=uniqueid), timeout=20)
    assert await caller.done() == 0, caller.errors()
    row = await world.call_row(uniqueid, lambda r: r["outcome"] is not None)
    assert (row["customer_id"], row["queue"], row["ivr_choice"], row["outcome"]) == (None, "mobile", "2", "answered")
    [pop] = consoles["mobile1"].pops(uniqueid)
    assert pop["customer"] is None and pop["unknown_caller"] is True


# ------------------------------------------------------------------------------------------- priorities


async def _hold_the_queue(world: World, agent: str) -> Console:
    """An agent who is Ready, then paused: callers queue up behind the pause."""
    console = (await world.ready(agent))[agent]
    await console.state("paused")
    endpoint = next(e for u, e, _q, _x in AGENTS if u == agent)
    await until(lambda: re.search(rf"PJSIP/{endpoint}\b.*paused", world.pbx.cli("queue show")), 10, "paused")
    return console


async def _queue_priorities(world: World, queue: str) -> dict[str, str]:
    """Number -> queue priority of the callers waiting in ``queue`` (QueueStatus' QueueEntry)."""
    start = len(world.ami.events)
    done = await world.ami.action("QueueStatus", Queue=queue)
    assert done.get("Response") == "Success", done
    await world.ami.wait_for(lambda e: e.get("Event") == "QueueStatusComplete")
    return {e["CallerIDNum"]: e["Priority"] for e in world.ami.events[start:] if e.get("Event") == "QueueEntry"}


@pytest.mark.parametrize("first, first_digit, second, queue, priority", [
    # an unknown caller who pressed 3 (complaints, priority 0), then a customer with an open complaint (10)
    ("13600136001", "3", "13912345678", "complaints", "10"),
    # a normal mobile customer (0), then a VIP (5)
    ("13800138000", "", "13700002222", "mobile", "5"),
], ids=["open-complaint", "vip"])
async def test_priority_caller_is_put_ahead_of_an_earlier_caller_and_served_first(
        world: World, first: str, first_digit: str, second: str, queue: str, priority: str) -> None:
    agent = {"complaints": "compl1", "mobile": "mobile1"}[queue]
    console = await _hold_the_queue(world, agent)
    keys = world.press_in_the_menu(first_digit) if first_digit else ()
    early = await place_call(world.pbx, world.workdir, first, keys=keys, hold_ms=60000)
    join1 = await world.ami.wait_for(event("QueueCallerJoin", CallerIDNum=first), timeout=30)
    facts = {v: (await world.ami.action("Getvar", Channel=join1["Channel"], Variable=v)).get("Value")
             for v in ("CTI_DIGIT", "CTI_OVERFLOW_FROM", "CTI_ROUTE")}
    assert (join1["Queue"], join1["Position"]) == (queue, "1"), (facts, world.pbx.cli(f"queue show {queue}"))
    late = await place_call(world.pbx, world.workdir, second, hold_ms=60000)
    join2 = await world.ami.wait_for(event("QueueCallerJoin", CallerIDNum=second), timeout=30)
    # the later caller goes in front: Position 1 of 2 (QueueCallerJoin's Priority is the dialplan step;
    # the queue priority shows in the position, and in QueueStatus)
    assert (join2["Queue"], join2["Position"], join2["Count"]) == (queue, "1", "2")
    assert await _queue_priorities(world, queue) == {first: "0", second: priority}
    await console.state("ready")
    served = await world.ami.wait_for(lambda e: e.get("Event") == "AgentConnect" and e.get("Queue") == queue, timeout=20)
    assert served["CallerIDNum"] == second
    # the agent's phone hangs up after 3 s; then the earlier caller is served
    served2 = await world.ami.wait_for(event("AgentConnect", Uniqueid=join1["Uniqueid"]), timeout=30)
    assert served2["CallerIDNum"] == first
    assert await late.done() == 0 and await early.done() == 0
    rows = {n: await world.call_row(j["Uniqueid"], lambda r: r["outcome"] is not None) for n, j in ((first, join1), (second, join2))}
    assert rows[second]["priority"] == int(priority) and rows[first]["priority"] == 0
    assert rows[second]["route"] == ("complaint" if queue == "complaints" else "product")
    assert rows[second]["answered_at"] < rows[first]["answered_at"]
    assert rows[first]["wait_s"] > rows[second]["wait_s"]


# ------------------------------------------------------------------------------------------- abandon


async def test_caller_who_hangs_up_in_the_queue_is_recorded_abandoned_with_the_wait(world: World) -> None:
    await _hold_the_queue(world, "mobile1")
    caller = await place_call(world.pbx, world.workdir, "13800138000", hold_ms=7000)
    join = await world.ami.wait_for(event("QueueCallerJoin", CallerIDNum="13800138000"), timeout=20)
    abandon = await world.ami.wait_for(event("QueueCallerAbandon", Uniqueid=join["Uniqueid"]), timeout=20)
    assert await caller.done() == 0, caller.errors()
    row = await world.call_row(join["Uniqueid"], lambda r: r["outcome"] is not None)
    assert row["outcome"] == "abandoned" and row["queue"] == "mobile"
    assert row["agent_id"] is None and row["answered_at"] is None
    # the wait: from joining the queue to the hang-up (Asterisk's HoldTime, whole seconds)
    assert abs(row["wait_s"] - float(abandon["HoldTime"])) <= 1.5
    assert 2.0 <= row["wait_s"] <= 7.0


# ------------------------------------------------------------------------------------------- cti unreachable


@pytest.mark.parametrize("how", ["stopped", "black-holed"])
async def test_without_cti_the_caller_still_reaches_the_default_queue(world: World, how: str) -> None:
    await world.ready("appl1")
    await world.daemon.stop()  # QueueAdd is done; the members stay in Asterisk
    listener, fillers = None, []
    if how == "black-holed":
        # a listener whose backlog is full: SYNs to the FastAGI port go unanswered
        listener = socket.socket()
        listener.bind(("127.0.0.1", world.pbx.agi_port))
        listener.listen(0)
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", world.pbx.agi_port))
            fillers.append(filler)
    try:
        caller = await place_call(world.pbx, world.workdir, "13800138000")  # a mobile customer, but cti is away
        join = await world.ami.wait_for(event("QueueCallerJoin", CallerIDNum="13800138000"), timeout=20)
        born = await world.ami.wait_for(event("Newchannel", Uniqueid=join["Uniqueid"]), timeout=1)
        waited = float(join["_t"]) - float(born["_t"])
        assert join["Queue"] == "appliances"  # the dialplan's DEFAULT_QUEUE
        # refused: at once; no SYN answer: Asterisk's 2 s FastAGI connect timeout
        assert waited < (1.0 if how == "stopped" else 4.0), waited
        if how == "black-holed":
            assert waited >= 1.9, waited
            assert re.search(r"FastAGI connection to 'agi://127\.0\.0\.1:\d+/incoming' timed out", world.pbx.messages())
        status = await world.ami.action("Getvar", Channel=join["Channel"], Variable="AGISTATUS")
        assert status.get("Value") == "FAILURE"
        connect = await world.ami.wait_for(event("AgentConnect", Uniqueid=join["Uniqueid"]), timeout=20)
        assert connect["Interface"] == "PJSIP/2001"  # a human answered
        assert await caller.done() == 0, caller.errors()
    finally:
        for filler in fillers:
            filler.close()
        if listener:
            listener.close()
    # cti comes back: the call it never saw is not invented, the agent is seen as Asterisk has it
    world.daemon = await start_daemon(world.pbx, world.seed)
    snap = world.daemon.ami.state.snapshot(time.time())
    assert snap["calls"] == []
    assert [a["interface"] for a in snap["agents"] if "appliances" in a["queues"]] == ["PJSIP/2001"]


# ------------------------------------------------------------------------------------------- hostile caller


#: A SIP display name (quoted-string content: \\" and \\\\ are its escapes) full of quotes, a backslash,
#: UTF-8, a parameter and fake AGI lines. (PJSIP drops a folded, CR/LF display name as a syntax error.)
HOSTILE_NAME = 'Evil \\"Bob\\" O\'Brien \\\\ 王伟;x=1 agi_extension: 911 SET VARIABLE CTI_QUEUE \\"complaints\\"'
#: CR/LF do get in through the From URI's user part, %-escaped: PJSIP decodes it into CALLERID(num) (at
#: most 79 bytes), which Asterisk writes raw into the AMI channel events. This one ends the Newchannel
#: frame and forges an AgentConnect of compl1's phone (the frame absorbs the rest of the Newchannel).
FORGED_USER = "1%0D%0A%0D%0AEvent%3A%20AgentConnect%0D%0AQueue%3A%20mobile%0D%0AInterface%3A%20PJSIP%2F3001%0D%0AUniqueid%3A%204"


async def _agi_commands(world: World, channel: str) -> list[str]:
    """What cti sent over FastAGI on ``channel`` (Asterisk's 'agi set debug on' lines)."""
    return re.findall(rf"<{re.escape(channel)}>AGI Rx << (.*)", world.pbx.messages())


async def test_hostile_caller_name_injects_nothing_and_changes_no_route(world: World) -> None:
    consoles = await world.ready("mobile1", "compl1")
    world.pbx.cli("agi set debug on")
    try:
        caller = await place_call(world.pbx, world.workdir, "13500135000", name=HOSTILE_NAME)
        join = await world.ami.wait_for(event("QueueCallerJoin", CallerIDNum="13500135000"), timeout=20)
    finally:
        world.pbx.cli("agi set debug off")
    uniqueid, channel = join["Uniqueid"], join["Channel"]
    assert join["Queue"] == "mobile"  # the customer's own route (mobile products), not the injected one
    assert "Evil" in join["CallerIDName"]  # the name did reach Asterisk
    await world.ami.wait_for(event("AgentConnect", Uniqueid=uniqueid), timeout=20)
    assert await caller.done() == 0, caller.errors()
    sent = await _agi_commands(world, channel)
    assert sent and all(re.fullmatch(r'SET VARIABLE CTI_[A-Z_]+ "[^"\\]*"', line) for line in sent), sent
    assert 'SET VARIABLE CTI_QUEUE "mobile"' in sent
    assert not any(s in line for line in sent for s in ("911", "complaints", "Evil", "agi_"))
    row = await world.call_row(uniqueid, lambda r: r["outcome"] is not None)
    assert (row["customer_id"], row["queue"], row["route"], row["outcome"]) == (
        world.seed.customer_ids["hostile"], "mobile", "product", "answered")
    [pop] = consoles["mobile1"].pops(uniqueid)
    assert pop["customer"]["id"] == world.seed.customer_ids["hostile"]
    assert consoles["compl1"].pops() == []
    assert world.daemon.ami.link.tampered_frames == 0


async def test_line_breaks_in_the_caller_number_forge_no_ami_state(world: World) -> None:
    consoles = await world.ready("mobile1", "compl1")
    link = world.daemon.ami.link
    caller = await place_call(world.pbx, world.workdir, FORGED_USER, name="Mallory", keys=world.press_in_the_menu("2"))
    # Asterisk did put the forged frames on the wire (our own AMI session parsed them)...
    forged = await world.ami.wait_for(event("AgentConnect", Uniqueid="4"), timeout=20)
    assert (forged["Queue"], forged["Interface"]) == ("mobile", "PJSIP/3001")
    # ...the dialplan cleared the number first thing: an unknown caller, who picks mobile in the menu
    join = await world.ami.wait_for(lambda e: e.get("Event") == "QueueCallerJoin" and e.get("Queue") == "mobile"
                                    and e.get("CallerIDName") == "Mallory", timeout=30)
    assert join["CallerIDNum"] in ("", "<unknown>")
    uniqueid = join["Uniqueid"]
    await world.ami.wait_for(event("AgentConnect", Uniqueid=uniqueid), timeout=20)
    assert await caller.done() == 0, caller.errors()
    row = await world.call_row(uniqueid, lambda r: r["outcome"] is not None)
    assert (row["customer_id"], row["queue"], row["outcome"]) == (None, "mobile", "answered")
    # nothing forged reached cti's state: no call 4, compl1 never rang nor talked, no pop for it
    async with world.daemon.engine.connect() as conn:
        assert (await conn.execute(select(calls.c.id).where(calls.c.uniqueid == "4"))).first() is None
    compl1 = world.daemon.ami.state.agents.by_interface("PJSIP/3001")
    assert compl1 is not None and compl1.on_call is None
    assert consoles["compl1"].pops() == []
    assert len(consoles["mobile1"].pops(uniqueid)) == 1
    assert world.daemon.ami.state.snapshot(time.time())["calls"] == []
    # how: cti saw the tampered frame, dropped the connection before reading what followed, resynced
    assert link.tampered_frames >= 1
    await until(lambda: world.daemon.ami.connected, 10, "AMI reconnected")


# ------------------------------------------------------------------------------------------- PBX restart


async def test_asterisk_restart_mid_call_leaves_no_ghosts_and_keeps_finished_calls(world: World) -> None:
    consoles = await world.ready("mobile1")
    # a call that finished before the restart
    done = await place_call(world.pbx, world.workdir, "13800138000")
    join1 = await world.ami.wait_for(event("QueueCallerJoin", CallerIDNum="13800138000"), timeout=20)
    await world.ami.wait_for(event("AgentConnect", Uniqueid=join1["Uniqueid"]), timeout=20)
    assert await done.done() == 0, done.errors()
    finished = dict(await world.call_row(join1["Uniqueid"], lambda r: r["outcome"] == "answered"))
    # a caller waiting in the queue (the agent paused) when Asterisk restarts
    await consoles["mobile1"].state("paused")
    await until(lambda: re.search(r"PJSIP/1001\b.*paused", world.pbx.cli("queue show mobile")), 10, "paused")
    waiting = await place_call(world.pbx, world.workdir, "13700002222", hold_ms=90000)
    join2 = await world.ami.wait_for(event("QueueCallerJoin", CallerIDNum="13700002222"), timeout=20)
    await until(lambda: world.daemon.ami.state.calls.get(join2["Uniqueid"]) is not None, 5, "cti tracks the caller")
    world.pbx.cli("core restart now", timeout=10)
    await until(lambda: not world.daemon.ami.connected, 15, "cti notices the PBX is gone")
    await asyncio.to_thread(world.pbx.wait_booted)
    await until(lambda: world.daemon.ami.connected and world.daemon.ami.link.ready.is_set(), 30, "cti reconnected")
    await world.ami.close()  # the test's own AMI session ended with the old Asterisk too
    world.ami = Ami()
    assert (await world.ami.connect(world.pbx.ami_port, "cti", ami_secret())).get("Response") == "Success"
    if waiting.process.returncode is None:  # its call is gone with the old Asterisk (a BYE may not come)
        try:
            waiting.process.kill()
        except ProcessLookupError:
            pass
    await waiting.process.wait()
    # no ghost call: the waiting caller's call is closed, nothing is live
    snap = world.daemon.ami.state.snapshot(time.time())
    assert snap["calls"] == []
    gone = await world.call_row(join2["Uniqueid"])
    assert gone["ended_at"] is not None and gone["outcome"] != "answered"
    # the finished call is kept as it was
    again = dict(await world.call_row(join1["Uniqueid"]))
    assert {k: again[k] for k in ("outcome", "queue", "agent_id", "wait_s", "talk_s", "ended_at")} == \
        {k: finished[k] for k in ("outcome", "queue", "agent_id", "wait_s", "talk_s", "ended_at")}
    # no ghost agent: cti shows exactly the members Asterisk restored (persistentmembers), paused as before
    members = {(a["interface"], a["state"]) for a in snap["agents"] if a["queues"]}
    assert members == {("PJSIP/1001", "paused")}, members
    assert re.search(r"PJSIP/1001\b.*paused", world.pbx.cli("queue show mobile"))
    # and the line works again: the agent is back, the phone (its contact restored from astdb) answers, the
    # pop comes. A restored contact counts as unavailable until its first qualify (up to qualify_frequency,
    # 30 s; mobile's joinempty would send callers to DEFAULT_QUEUE meanwhile): ask for it now.
    world.pbx.cli("pjsip qualify 1001")
    await until(lambda: re.search(r"1001/\S+\s+\S+\s+Avail", world.pbx.cli("pjsip show contacts")), 30, "phone reachable")
    await consoles["mobile1"].state("ready")
    again_call = await place_call(world.pbx, world.workdir, "13800138000")
    join3 = await world.ami.wait_for(event("QueueCallerJoin", CallerIDNum="13800138000"), timeout=30)
    assert join3["Queue"] == "mobile"
    await world.ami.wait_for(event("AgentConnect", Uniqueid=join3["Uniqueid"]), timeout=30)
    assert await again_call.done() == 0, again_call.errors()
    await until(lambda: consoles["mobile1"].pops(join3["Uniqueid"]), 5, "the pop after the restart")


# ------------------------------------------------------------------------------------------- outbound


async def test_outbound_follow_up_rings_the_agent_then_the_customer_with_the_follow_up_on_screen(world: World) -> None:
    from sip_world import CALLEE_PORT, CALLER_IP

    callee = Phone("callee", world.pbx, world.workdir, port=CALLEE_PORT, ip=CALLER_IP, registers=False)
    callee.start(ring_ms=1000, talk_ms=10000)
    try:
        console = await world.console("mobile1")
        auth = {"Authorization": f"Bearer {console.token}"}
        customer_id = world.seed.customer_ids["wang"]
        async with world.http.post(world.base + "/api/outbound/followups", headers=auth,
                                   json={"customer_id": customer_id, "reason": "repair check"}) as r:
            assert r.status == 201, await r.text()
            followup_id = (await r.json())["followup_id"]
        async with world.http.post(f"{world.base}/api/outbound/followups/{followup_id}/dial", headers=auth, json={}) as r:
            assert r.status == 202, await r.text()
            dial = await r.json()
        assert dial["phone"] == "+8613800138000"
        # the agent's phone rings first (Originate), then the customer's, with the 800 line as caller ID
        result = await world.ami.wait_for(lambda e: e.get("Event") == "OriginateResponse"
                                          and e.get("ActionID") == dial["action_id"], timeout=30)
        assert result["Response"] == "Success" and result["Channel"].startswith("PJSIP/1001-")
        await until(lambda: "INVITE sip:13800138000@" in callee.received(), 20, "the customer's phone rings")
        invite = callee.received()
        assert re.search(r"^From: .*<sip:8005551234@", invite, re.M), invite[:1500]
        await world.ami.wait_for(lambda e: e.get("Event") == "BridgeEnter" and e.get("Channel", "").startswith("PJSIP/pstn-"),
                                 timeout=20)
        # the agent's screen shows the follow-up being dialed
        pop = await until(lambda: next((m for m in console.messages if m.get("type") == "notification"
                                        and m.get("topic") == "outbound.dialing"), None), 10, "outbound.dialing")
        assert (pop["followup_id"], pop["customer_id"], pop["attempt_id"]) == (followup_id, customer_id, dial["attempt_id"])
        assert pop["reasons"] == ["repair check"]
        from outbound_world import wait_status
        assert await wait_status(world.daemon.sessionmaker, dial["attempt_id"], "connected") == "connected"
    finally:
        callee.stop()
