"""Our asterisk-config/ and dialplans/ loaded into a REAL Asterisk, with real calls.

Runs when ``CTI_ASTERISK_BIN`` names an asterisk binary (``tests/run.sh`` builds one and sets it):

    CTI_ASTERISK_BIN=/opt/asterisk/sbin/asterisk pytest -m asterisk tests/test_asterisk_real.py

Asterisk runs in a temporary directory on a copy of the shipped files (``asterisk_pbx.running_pbx``:
free AMI, FastAGI and SIP ports). Test-only contexts live in a separate included file.

Callers are AMI ``Originate``s of ``Local/8005551234@cti-inbound`` sent as the least-privilege
user ``cti``; a small FastAGI responder in the test plays cti; the test watches the
queue events over the same AMI session.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Callable, Iterator

import pytest

from asterisk_pbx import BIN, CONF, Ami, Pbx, ami_secret, documentation_dir, requires_asterisk, running_pbx

pytestmark = [pytest.mark.asterisk, requires_asterisk]

#: Test-only dialplan: answering agents and a caller side that can press a key.
TEST_CONTEXTS = """\
; test only: queue members that answer, and the caller's side of an originated call
[cti-test-agents]
exten => _X.,1,Answer()
 same => n,Wait(30)
 same => n,Hangup()

[cti-test-caller]
exten => s,1,Wait(30)
 same => n,Hangup()
exten => press2,1,Wait(3)
 same => n,SendDTMF(2)
 same => n,Wait(30)
 same => n,Hangup()
"""

#: Source files whose warnings concern our configuration (others complain about config files
#: for modules we do not configure, e.g. cdr_pgsql.conf, which a real /etc/asterisk has).
OUR_SOURCES = (
    "pbx_config.c",
    "pbx.c",
    "app_queue.c",
    "manager.c",
    "res_agi.c",
    "config.c",
    "res_musiconhold.c",
    "app_playback.c",
    "app_read.c",
    "logger.c",
    "asterisk.c",
)
OUR_FILES = ("extensions.conf", "queues.conf", "manager.conf", "modules.conf", "logger.conf", "musiconhold.conf", "800-line.conf", "transfer.conf", "phones.conf")


@pytest.fixture(scope="module")
def pbx() -> Iterator[Pbx]:
    def edit(etc: Path) -> None:
        (etc / "extensions.conf").write_text((etc / "extensions.conf").read_text() + "\n#include cti-test.conf\n")
        (etc / "cti-test.conf").write_text(TEST_CONTEXTS)

    sounds = {"greet-test": 0.3, "greet-generic-en": 0.3, "ivr-menu-zh": 1.0, "ivr-menu-en": 1.0, "afterhours-zh": 0.3, "afterhours-en": 0.3}
    with running_pbx("cti-ast-", edit=edit, sounds={f"cti/{k}": v for k, v in sounds.items()}) as running:
        yield running


# --------------------------------------------------------------------------- a tiny FastAGI responder


@dataclass
class AgiResponder:
    """Plays cti's part: per route, the channel variables to set; records each session's env."""

    answers: dict[str, Callable[[dict[str, str]], dict[str, str]]]
    sessions: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        env: dict[str, str] = {}
        while True:
            line = (await reader.readline()).decode("utf-8", "replace").rstrip("\n")
            if not line:
                break
            key, sep, value = line.partition(": ")
            if sep and key not in env:
                env[key] = value
        self.sessions.append(env)
        answer = self.answers.get(env.get("agi_network_script", ""), lambda env: {})(env)
        for name, value in answer.items():
            writer.write(f'SET VARIABLE {name} "{value}"\n'.encode())
            await writer.drain()
            reply = await reader.readline()
            assert reply.startswith(b"200 result=1"), reply
        writer.close()


@pytest.fixture
async def ami(pbx: Pbx) -> AsyncIterator[Ami]:
    client = Ami()
    login = await client.connect(pbx.ami_port, "cti", ami_secret())
    assert login.get("Response") == "Success", login
    yield client
    # leave the PBX as we found it: no calls, no members
    pbx.cli("channel request hangup all")
    for queue in ("complaints", "appliances", "mobile"):
        for interface in re.findall(r"(Local/\S+@cti-test-agents/n)", pbx.cli(f"queue show {queue}")):
            await client.action("QueueRemove", Queue=queue, Interface=interface)
    await client.close()
    for _ in range(50):
        if "0 active channels" in pbx.cli("core show channels count"):
            break
        time.sleep(0.1)


@pytest.fixture
async def agi_server(pbx: Pbx) -> AsyncIterator[Callable[[AgiResponder], "asyncio.Future"]]:
    servers = []

    async def start(responder: AgiResponder):
        server = await asyncio.start_server(responder.handle, "127.0.0.1", pbx.agi_port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


_numbers = itertools.count(13900000001)


async def originate(ami: Ami, exten: str = "s", channel: str = "Local/8005551234@cti-inbound") -> str:
    """A caller on the 800 line; returns its caller number (unique per call)."""
    number = str(next(_numbers))
    reply = await ami.action(
        "Originate",
        Channel=channel,
        Context="cti-test-caller",
        Exten=exten,
        Priority="1",
        CallerID=f'"Test Caller" <{number}>',
        Async="true",
    )
    assert reply.get("Response") == "Success", reply
    return number


def joined(number: str, queue: str | None = None) -> Callable[[dict[str, str]], bool]:
    return lambda e: e.get("Event") == "QueueCallerJoin" and e.get("CallerIDNum") == number and (queue is None or e.get("Queue") == queue)


# --------------------------------------------------------------------------- loading


def test_asterisk_loads_our_config_cleanly(pbx: Pbx) -> None:
    assert re.match(r"Asterisk 2\d\.", pbx.cli("core show version"))
    plan = pbx.cli("dialplan show cti-inbound")
    assert "AGI(agi://${CTI_HOST}:${CTI_PORT}/incoming)" in plan
    assert "AGI(agi://${CTI_HOST}:${CTI_PORT}/ivr,${CTI_DIGIT})" in plan
    assert "[queue]" in plan and "Queue(${CTI_QUEUE},t,,,${CTI_WAIT})" in plan
    assert "'_X.' =>" in plan and "'s' =>" in plan
    assert "Goto(cti-inbound,${EXTEN},1)" in pbx.cli("dialplan show from-pstn")
    assert "Queue(${CTI_QUEUE},t)" in pbx.cli("dialplan show cti-transfer")
    assert "Dial(PJSIP/${EXTEN},30)" in pbx.cli("dialplan show phones")
    agents = pbx.cli("dialplan show agents")
    assert "'phones'" in agents and "'cti-transfer'" in agents  # the includes
    queues = pbx.cli("queue show")
    for name, strategy in {"complaints": "ringall", "appliances": "rrmemory", "mobile": "rrmemory"}.items():
        assert re.search(rf"^{name} has 0 calls .* in '{strategy}' strategy", queues, re.M), queues
    assert "No Members" in pbx.cli("queue show mobile")
    user = pbx.cli("manager show user cti")
    assert re.search(r"read perm: system,call,agent,user,reporting\s*$", user, re.M), user
    assert re.search(r"write perm: call,agent,reporting,originate\s*$", user, re.M), user
    assert "127.0.0.1/255.255.255.255" in user
    assert f"127.0.0.1:{pbx.ami_port}" in pbx.cli("manager show settings")
    assert re.search(r"res_agi\.so .* Running", pbx.cli("module show like res_agi"))
    assert "default" in pbx.cli("moh show classes")
    assert "CTI_HOST=127.0.0.1" in pbx.cli("dialplan show globals")


def test_no_warning_about_our_files_at_startup(pbx: Pbx) -> None:
    ours = []
    for line in pbx.startup_log.splitlines():
        if not re.search(r"\] (WARNING|ERROR)\[", line):
            continue
        if any(f" {src}:" in line for src in OUR_SOURCES) or any(name in line for name in OUR_FILES):
            ours.append(line)
    assert ours == []
    assert "Executing" not in pbx.startup_log  # sanity: nothing ran yet


def test_pjsip_conf_uses_only_documented_options(pbx: Pbx) -> None:
    """No PJSIP in a build without pjproject: check pjsip.conf against Asterisk's own XML docs."""
    docs = documentation_dir(Path(BIN))
    if docs is None:
        pytest.skip("Asterisk's documentation XML is not installed")
    options: dict[str, set[str]] = {}
    enums: dict[tuple[str, str], set[str]] = {}
    for info in ET.parse(docs / "core-en_US.xml").getroot().iter("configInfo"):
        if info.get("name") != "res_pjsip":
            continue
        for obj in info.iter("configObject"):
            for opt in obj.iter("configOption"):
                options.setdefault(obj.get("name"), set()).add(opt.get("name"))
                values = {e.get("name") for e in opt.iter("enum")}
                if values:
                    enums[(obj.get("name"), opt.get("name"))] = values
    assert {"endpoint", "aor", "auth", "transport"} <= set(options)
    sections: list[tuple[str, list[tuple[str, str]]]] = []
    templates: dict[str, list[tuple[str, str]]] = {}
    for raw in (CONF / "pjsip.conf").read_text().splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        head = re.match(r"^\[([^\]]+)\](?:\(([^)]*)\))?$", line)
        if head:
            opts = [o.strip() for o in (head.group(2) or "").split(",") if o.strip()]
            items = [kv for t in opts if t != "!" for kv in templates[t]]
            sections.append((head.group(1), items))
            if "!" in opts:
                templates[head.group(1)] = items
            continue
        key, _, value = line.partition("=")
        sections[-1][1].append((key.strip(), value.strip()))
    checked = 0
    for name, items in sections:
        if name in templates:
            continue
        kind = dict(items)["type"]
        for key, value in items:
            assert key in options[kind], f"[{name}] type={kind}: unknown option {key}"
            if (kind, key) in enums:
                assert value in enums[(kind, key)], f"[{name}] {key}={value} not in {sorted(enums[(kind, key)])}"
            checked += 1
    assert checked > 50


# --------------------------------------------------------------------------- AMI as the cti user


async def test_cti_ami_user_can_do_its_job_and_nothing_more(pbx: Pbx, ami: Ami) -> None:
    assert ami.banner.startswith("Asterisk Call Manager/")
    # refused: arbitrary CLI, reading config files (secrets), module (un)loading, astdb writes, Reload
    for name, headers in {
        "Command": {"Command": "core show uptime"},
        "GetConfig": {"Filename": "manager.conf"},
        "UpdateConfig": {"SrcFilename": "manager.conf", "DstFilename": "x.conf"},
        "ModuleLoad": {"Module": "res_agi.so", "LoadType": "unload"},
        "DBPut": {"Family": "cti", "Key": "k", "Val": "v"},
        "Reload": {"Module": "pbx_config.so"},
    }.items():
        denied = await ami.action(name, **headers)
        assert denied.get("Response") == "Error" and denied.get("Message") == "Permission denied", (name, denied)
    assert re.search(r"res_agi\.so .* Running", pbx.cli("module show like res_agi"))
    # allowed: what cti does
    reloaded = await ami.action("QueueReload")
    assert reloaded.get("Response") == "Success", reloaded
    shown = await ami.action("ShowDialPlan", Context="cti-inbound")
    assert shown.get("Response") == "Success", shown
    channels = await ami.action("CoreShowChannels")
    assert channels.get("Response") == "Success", channels
    added = await ami.action("QueueAdd", Queue="mobile", Interface="Local/1001@cti-test-agents/n", MemberName="Li Na", Paused="true")
    assert added.get("Response") == "Success", added
    await ami.wait_for(lambda e: e.get("Event") == "QueueMemberAdded" and e.get("MemberName") == "Li Na")
    removed = await ami.action("QueueRemove", Queue="mobile", Interface="Local/1001@cti-test-agents/n")
    assert removed.get("Response") == "Success", removed


# --------------------------------------------------------------------------- calls


async def test_call_joins_the_queue_cti_chose_with_its_priority(pbx: Pbx, ami: Ami, agi_server) -> None:
    responder = AgiResponder({"incoming": lambda env: {"CTI_QUEUE": "mobile", "CTI_PRIORITY": "5", "CTI_GREETING": "cti/greet-test", "CTI_CUSTOMER_ID": "42", "CTI_LANG": "en", "CTI_ACTION": "queue", "CTI_ROUTE": "history"}})
    await agi_server(responder)
    # a paused agent: the caller may join (paused agents count) and waits
    await ami.action("QueueAdd", Queue="mobile", Interface="Local/1001@cti-test-agents/n", MemberName="Li Na", Paused="true")
    number = await originate(ami)
    join = await ami.wait_for(joined(number))
    assert join["Queue"] == "mobile"
    env = responder.sessions[0]
    assert env["agi_network_script"] == "incoming"
    assert env["agi_context"] == "cti-inbound" and env["agi_extension"] == "8005551234"
    assert env["agi_callerid"] == number
    status = await ami.action("QueueStatus", Queue="mobile")
    assert status.get("Response") == "Success"
    entry = await ami.wait_for(lambda e: e.get("Event") == "QueueEntry" and e.get("CallerIDNum") == number)
    assert entry["Priority"] == "5"  # the queue priority: QUEUE_PRIO from CTI_PRIORITY
    prio = await ami.action("Getvar", Channel=join["Channel"], Variable="QUEUE_PRIO")
    assert prio.get("Value") == "5"
    assert "Playing 'cti/greet-test.wav'" in pbx.messages() or "Playing 'cti/greet-test.slin'" in pbx.messages()
    # the agent comes back from the break and gets the call
    await ami.action("QueuePause", Queue="mobile", Interface="Local/1001@cti-test-agents/n", Paused="false")
    connect = await ami.wait_for(lambda e: e.get("Event") == "AgentConnect" and e.get("CallerIDNum") == number)
    assert connect["Queue"] == "mobile" and connect["MemberName"] == "Li Na"
    # least privilege: nothing carrying raw dialplan data reached this AMI user
    assert not [e for e in ami.events if e.get("Event") in ("Newexten", "VarSet", "AGIExecStart", "AGIExecEnd", "Cdr")]


async def test_ivr_digit_goes_to_cti_which_picks_the_queue(pbx: Pbx, ami: Ami, agi_server) -> None:
    responder = AgiResponder(
        {
            "incoming": lambda env: {"CTI_QUEUE": "appliances", "CTI_ACTION": "ivr", "CTI_LANG": "en", "CTI_ROUTE": "ivr"},
            "ivr": lambda env: {"CTI_QUEUE": "complaints", "CTI_PRIORITY": "3"} if env.get("agi_arg_1") == "2" else {},
        }
    )
    await agi_server(responder)
    await ami.action("QueueAdd", Queue="complaints", Interface="Local/3001@cti-test-agents/n", MemberName="Sun Li", Paused="true")
    number = await originate(ami, exten="press2")
    join = await ami.wait_for(joined(number), timeout=20)
    assert [s["agi_network_script"] for s in responder.sessions] == ["incoming", "ivr"]
    assert responder.sessions[1].get("agi_arg_1") == "2"
    assert join["Queue"] == "complaints"
    assert "Playing 'cti/ivr-menu-en" in pbx.messages()


async def test_after_hours_plays_the_message_and_hangs_up(pbx: Pbx, ami: Ami, agi_server) -> None:
    responder = AgiResponder({"incoming": lambda env: {"CTI_QUEUE": "appliances", "CTI_ACTION": "afterhours", "CTI_LANG": "en", "CTI_GREETING": "cti/greet-generic-en"}})
    await agi_server(responder)
    number = await originate(ami)
    await ami.wait_for(lambda e: e.get("Event") == "Hangup" and e.get("CallerIDNum") == number and e.get("Channel", "").endswith(";2"))
    assert not [e for e in ami.events if joined(number)(e)]
    log = pbx.messages()
    assert "Playing 'cti/greet-generic-en" in log and "Playing 'cti/afterhours-en" in log


async def test_falls_back_to_the_default_queue_when_cti_is_down(pbx: Pbx, ami: Ami) -> None:
    # nothing listens on the AGI port: connection refused, AGISTATUS=FAILURE, CTI_QUEUE empty
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", pbx.agi_port)) != 0
    number = await originate(ami)
    join = await ami.wait_for(joined(number), timeout=10)
    assert join["Queue"] == "appliances"
    prio = await ami.action("Getvar", Channel=join["Channel"], Variable="QUEUE_PRIO")
    assert prio.get("Value", "") == ""
    status = await ami.action("Getvar", Channel=join["Channel"], Variable="AGISTATUS")
    assert status.get("Value") == "FAILURE"


async def test_falls_back_to_the_default_queue_when_cti_does_not_answer(pbx: Pbx, ami: Ami) -> None:
    # a listener whose backlog is full drops further SYNs: Asterisk gives up after its 2 s
    # FastAGI connect timeout (MAX_AGI_CONNECT), like a host that has vanished
    listener = socket.socket()
    fillers = []
    try:
        listener.bind(("127.0.0.1", pbx.agi_port))
        listener.listen(0)
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", pbx.agi_port))
            fillers.append(filler)
        number = await originate(ami)
        join = await ami.wait_for(joined(number), timeout=15)
        assert join["Queue"] == "appliances"
        assert re.search(r"FastAGI connection to 'agi://127\.0\.0\.1:\d+/incoming' timed out", pbx.messages())
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_a_skill_queue_with_no_agent_overflows_to_the_default_queue(pbx: Pbx, ami: Ami, agi_server) -> None:
    responder = AgiResponder({"incoming": lambda env: {"CTI_QUEUE": "complaints", "CTI_PRIORITY": "7", "CTI_LANG": "zh"}})
    await agi_server(responder)
    number = await originate(ami)
    join = await ami.wait_for(joined(number), timeout=10)
    assert join["Queue"] == "appliances"  # complaints answered JOINEMPTY
    got = await ami.action("Getvar", Channel=join["Channel"], Variable="CTI_OVERFLOW_FROM")
    assert got.get("Value") == "complaints"
    status = await ami.action("QueueStatus", Queue="appliances")
    assert status.get("Response") == "Success"
    entry = await ami.wait_for(lambda e: e.get("Event") == "QueueEntry" and e.get("CallerIDNum") == number)
    assert entry["Priority"] == "7"


async def test_cti_answer_with_a_queue_that_does_not_exist_goes_to_the_default_queue(pbx: Pbx, ami: Ami, agi_server) -> None:
    await agi_server(AgiResponder({"incoming": lambda env: {"CTI_QUEUE": "nosuchqueue", "CTI_GREETING": "cti/missing-sound"}}))
    number = await originate(ami)
    join = await ami.wait_for(joined(number), timeout=10)
    assert join["Queue"] == "appliances"
    # the missing greeting only logged a warning; the call went on
    assert re.search(r"WARNING.*Playback failed on .* for cti/missing-sound", pbx.messages())


async def test_trunk_call_without_a_number_is_routed_as_the_800_number(pbx: Pbx, ami: Ami, agi_server) -> None:
    responder = AgiResponder({"incoming": lambda env: {"CTI_QUEUE": "appliances", "CTI_PRIORITY": "0"}})
    await agi_server(responder)
    number = await originate(ami, channel="Local/s@from-pstn")
    join = await ami.wait_for(joined(number), timeout=10)
    assert join["Queue"] == "appliances"
    env = responder.sessions[0]
    assert (env["agi_context"], env["agi_extension"]) == ("cti-inbound", "8005551234")


async def test_blind_transfer_to_another_queue(pbx: Pbx, ami: Ami, agi_server) -> None:
    await agi_server(AgiResponder({"incoming": lambda env: {"CTI_QUEUE": "complaints"}}))
    await ami.action("QueueAdd", Queue="complaints", Interface="Local/3001@cti-test-agents/n", MemberName="Sun Li")
    await ami.action("QueueAdd", Queue="mobile", Interface="Local/1001@cti-test-agents/n", MemberName="Li Na", Paused="true")
    number = await originate(ami)
    connect = await ami.wait_for(lambda e: e.get("Event") == "AgentConnect" and e.get("CallerIDNum") == number)
    assert connect["Queue"] == "complaints"
    agent = connect["DestChannel"]
    await ami.wait_for(lambda e: e.get("Event") == "BridgeEnter" and e.get("Channel") == agent)
    # Right after BridgeEnter the bridge may not be ready for a transfer yet ("Transfer
    # invalid"); an agent transfers after talking a moment, so retry for up to 3 s.
    for _ in range(15):
        moved = await ami.action("BlindTransfer", Channel=agent, Context="cti-transfer", Exten="mobile")
        if moved.get("Message") != "Transfer invalid":
            break
        await asyncio.sleep(0.2)
    assert moved.get("Response") == "Success", moved
    second = await ami.wait_for(joined(number, "mobile"))
    assert second["Queue"] == "mobile"
    done = await ami.wait_for(lambda e: e.get("Event") == "AgentComplete" and e.get("CallerIDNum") == number)
    assert done["Queue"] == "complaints" and done["Reason"] == "transfer"
