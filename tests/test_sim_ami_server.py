"""The simulated PBX's AMI server over real sockets: login, events, actions, Originate, a standard client."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sys

import pytest
from panoramisk import Manager

from cti.sim.config import AgentConfig, SimConfig
from cti.sim.pbx import SimPbx
from cti.sim.testing import RawAmiClient, ScriptedAgiServer, frame_name


def route(env: dict[str, str]) -> dict[str, str]:
    return {"CTI_QUEUE": "mobile", "CTI_PRIORITY": "0", "CTI_GREETING": "hello"}


@pytest.fixture
async def agi():
    server = await ScriptedAgiServer(route).start()
    yield server
    await server.stop()


@pytest.fixture
async def pbx(agi):
    config = SimConfig(ami_port=0, agi_port=agi.port, speed=50, seed=2, auth_fail_delay=0.05,
                       originate_answer_delay=1.0, dynamic_aht=10)
    async with SimPbx(config) as p:
        yield p


async def connect(pbx: SimPbx) -> RawAmiClient:
    return await RawAmiClient("127.0.0.1", pbx.ami_port).connect()


async def test_banner_and_login_with_events(pbx: SimPbx) -> None:
    c = await connect(pbx)
    assert c.banner == b"Asterisk Call Manager/11.0.0\r\n"
    r = await c.login()
    assert dict(r)["Message"] == "Authentication accepted"
    frames = await c.wait_for(lambda fs: any(frame_name(f) == "SuccessfulAuth" for f in fs))
    assert [frame_name(f) for f in frames] == ["Response:Success", "FullyBooted", "SuccessfulAuth"]
    auth = dict(frames[2])
    assert auth["AccountID"] == "cti" and auth["RemoteAddress"].startswith("IPV4/TCP/127.0.0.1/")
    # everything on the wire is CRLF
    assert b"\n" not in c.data.replace(b"\r\n", b"")
    await c.close()


async def test_bad_secret_is_refused_then_the_connection_closes(pbx: SimPbx) -> None:
    c = await connect(pbx)
    action_id = c.send("Login", Username="cti", Secret="wrong-secret", Events="on")
    r = await c.response(action_id)
    assert r == [("Response", "Error"), ("ActionID", action_id), ("Message", "Authentication failed")]
    await asyncio.wait_for(c.closed.wait(), 5)
    await c.close()


async def test_md5_challenge_login(pbx: SimPbx) -> None:
    c = await connect(pbx)
    challenge = dict(await c.response(c.send("Challenge", AuthType="MD5")))["Challenge"]
    key = hashlib.md5((challenge + "cti-secret").encode()).hexdigest()
    r = await c.response(c.send("Login", AuthType="MD5", Username="cti", Key=key, Events="off"))
    assert dict(r)["Message"] == "Authentication accepted"
    ping = dict(await c.response(c.send("Ping")))
    assert ping["Ping"] == "Pong" and float(ping["Timestamp"]) > 0
    bye = await c.response(c.send("Logoff"))
    assert dict(bye)["Message"] == "Thanks for all the fish."
    await asyncio.wait_for(c.closed.wait(), 5)
    # Events: off: no FullyBooted, no SuccessfulAuth
    assert not any("Event" in dict(f) for f in c.frames())
    await c.close()


async def test_actions_need_a_login_and_unknown_ones_get_asterisks_text(pbx: SimPbx) -> None:
    c = await connect(pbx)
    r = await c.response(c.send("QueueStatus"))
    assert dict(r)["Message"] == "Permission denied"
    await c.login()
    r = await c.response(c.send("NoSuchAction"))
    assert dict(r)["Message"] == ("Invalid/unknown command: NoSuchAction. "
                                  "Use Action: ListCommands to show available commands.")
    await c.close()


async def test_events_off_then_on(pbx: SimPbx) -> None:
    c = await connect(pbx)
    await c.login(events="off")
    call = pbx.place_call("13800138000", "Wang Wei", patience=600, talk_time=1)
    await call.wait("finished", timeout=30)
    assert not any(frame_name(f) == "QueueCallerJoin" for f in c.frames())
    r = await c.response(c.send("Events", EventMask="on"))
    assert dict(r)["Events"] == "On"
    call = pbx.place_call("13800138000", "Wang Wei", patience=600, talk_time=1)
    await c.event("AgentComplete")
    await c.close()


async def test_queue_add_pause_penalty_remove_and_their_errors(pbx: SimPbx) -> None:
    c = await connect(pbx)
    await c.login()
    ok = await c.response(c.send("QueueAdd", Queue="mobile", Interface="PJSIP/1003", MemberName="Huang Lei",
                                 Penalty="2"))
    assert dict(ok)["Message"] == "Added interface to queue"
    added = dict(await c.event("QueueMemberAdded"))
    assert (added["MemberName"], added["Interface"], added["Membership"], added["Penalty"]) == \
        ("Huang Lei", "PJSIP/1003", "dynamic", "2")
    dup = await c.response(c.send("QueueAdd", Queue="mobile", Interface="PJSIP/1003"))
    assert dict(dup) == {"Response": "Error", "ActionID": dict(dup)["ActionID"],
                         "Message": "Unable to add interface: Already there"}
    nq = await c.response(c.send("QueueAdd", Queue="no-such-queue", Interface="PJSIP/1003"))
    assert dict(nq)["Message"] == "Unable to add interface to queue: No such queue"
    pen = await c.response(c.send("QueuePenalty", Interface="PJSIP/1003", Penalty="1", Queue="mobile"))
    assert dict(pen)["Message"] == "Interface penalty set successfully"
    assert dict(await c.event("QueueMemberPenalty"))["Penalty"] == "1"
    paused = await c.response(c.send("QueuePause", Interface="PJSIP/1003", Paused="true", Reason="training"))
    assert dict(paused)["Message"] == "Interface paused successfully"
    pause = dict(await c.event("QueueMemberPause"))
    assert (pause["Paused"], pause["PausedReason"]) == ("1", "training")
    status = await c.response(c.send("QueueStatus", Member="PJSIP/1003"))
    frames = await c.wait_for(lambda fs: any(frame_name(f) == "QueueStatusComplete" for f in fs))
    members = [dict(f) for f in frames if frame_name(f) == "QueueMember"]
    assert [(m["Name"], m["Location"], m["Paused"]) for m in members] == [("Huang Lei", "PJSIP/1003", "1")]
    assert status
    rm = await c.response(c.send("QueueRemove", Queue="mobile", Interface="PJSIP/1003"))
    assert dict(rm)["Message"] == "Removed interface from queue"
    await c.event("QueueMemberRemoved")
    again = await c.response(c.send("QueueRemove", Queue="mobile", Interface="PJSIP/1003"))
    assert dict(again)["Message"] == "Unable to remove interface: Not there"
    await c.close()


async def test_a_dynamic_member_added_by_cti_takes_calls(pbx: SimPbx) -> None:
    c = await connect(pbx)
    await c.login()
    for iface in ("PJSIP/1001", "PJSIP/1002"):
        await c.response(c.send("QueueRemove", Queue="mobile", Interface=iface))
    await c.response(c.send("QueueAdd", Queue="mobile", Interface="PJSIP/1099", MemberName="New Agent"))
    call = pbx.place_call("13800138000", "Wang Wei", patience=600, talk_time=2)
    await call.wait("finished", timeout=30)
    assert (call.outcome, call.agent, call.agent_name) == ("answered", "PJSIP/1099", "New Agent")
    await c.close()


async def test_originate_click_to_dial_the_customer_answers(agi) -> None:
    config = SimConfig(ami_port=0, agi_port=agi.port, speed=50, seed=2, originate_answer_delay=1.0,
                       dynamic_aht=3600)  # a long conversation, ended below by a Hangup action
    async with SimPbx(config) as pbx:
        c = await connect(pbx)
        await c.login()
        action_id = c.send("Originate", Channel="PJSIP/1001", Context="cti-outbound", Exten="13800138000",
                           Priority="1", CallerID='"Li Na" <1001>', Timeout="30000", Async="true")
        r = await c.response(action_id)
        assert dict(r)["Message"] == "Originate successfully queued"
        resp = dict(await c.event("OriginateResponse"))
        assert (resp["ActionID"], resp["Response"], resp["Reason"]) == (action_id, "Success", "4")
        assert resp["Channel"].startswith("PJSIP/1001-")
        enter = await c.wait_for(lambda fs: sum(frame_name(f) == "BridgeEnter" for f in fs) >= 2)
        dial = dict(next(f for f in enter if frame_name(f) == "DialBegin"))
        assert dial["DestChannel"].startswith("PJSIP/trunk-") and dial["DialString"] == "trunk/13800138000"
        # while on the click-to-dial call, the agent's phone is busy for the queues
        assert pbx.queues.device("PJSIP/1001").in_call
        c.send("CoreShowChannels")
        frames = await c.wait_for(lambda fs: any(frame_name(f) == "CoreShowChannelsComplete" for f in fs))
        assert dict(next(f for f in frames if frame_name(f) == "CoreShowChannelsComplete"))["ListItems"] == "2"
        hung = await c.response(c.send("Hangup", Channel=resp["Channel"]))
        assert dict(hung)["Message"] == "Channel Hungup"
        cdr = dict(await c.event("Cdr", timeout=20))
        assert (cdr["Destination"], cdr["LastApplication"]) == ("13800138000", "Dial")
        assert not pbx.queues.device("PJSIP/1001").in_call
        await c.close()


async def test_originate_to_a_phone_that_does_not_answer_fails(agi) -> None:
    agents = (AgentConfig("PJSIP/1001", "Li Na", ("mobile",), noanswer=True),)
    async with SimPbx(SimConfig(ami_port=0, agi_port=agi.port, speed=50, agents=agents)) as pbx:
        c = await connect(pbx)
        await c.login()
        action_id = c.send("Originate", Channel="PJSIP/1001", Context="cti-outbound", Exten="13800138000",
                           Timeout="5000", Async="true")
        resp = dict(await c.event("OriginateResponse"))
        assert (resp["ActionID"], resp["Response"], resp["Reason"]) == (action_id, "Failure", "3")
        bad = await c.response(c.send("Originate", Channel="Local/9999@no-such-context", Application="Wait",
                                      Data="1", Timeout="3000"))
        assert dict(bad) == {"Response": "Error", "ActionID": dict(bad)["ActionID"], "Message": "Originate failed"}
        await c.close()


async def test_originate_into_the_800_line_like_the_captures(pbx: SimPbx, agi) -> None:
    c = await connect(pbx)
    await c.login()
    action_id = c.send("Originate", Channel="Local/8005551234@from-pstn", Context="caller", Exten="talk",
                       Priority="1", CallerID='"Wang Wei" <13800138000>', Timeout="30000", Async="true",
                       Variable="CALLER_SECONDS=600")
    resp = dict(await c.event("OriginateResponse"))
    assert (resp["ActionID"], resp["CallerIDNum"], resp["CallerIDName"]) == (action_id, "13800138000", "Wang Wei")
    await c.event("AgentConnect", timeout=20)
    assert agi.envs[-1]["agi_callerid"] == "13800138000"
    await c.close()


async def test_getvar_setvar_hangup_command(pbx: SimPbx) -> None:
    c = await connect(pbx)
    await c.login()
    for iface in ("PJSIP/1001", "PJSIP/1002"):
        await c.response(c.send("QueuePause", Queue="mobile", Interface=iface, Paused="true"))
    call = pbx.place_call("13700001111", "Zhao Lei", patience=600)
    await call.wait("queued", timeout=30)
    chan = call.channel.name
    got = dict(await c.response(c.send("Getvar", Channel=chan, Variable="CTI_QUEUE")))
    assert (got["Variable"], got["Value"]) == ("CTI_QUEUE", "mobile")
    assert dict(await c.response(c.send("Getvar", Channel=chan, Variable="CALLERID(num)")))["Value"] == "13700001111"
    assert dict(await c.response(c.send("Setvar", Channel=chan, Variable="CTI_NOTE", Value="vip caller")))[
        "Message"] == "Variable Set"
    assert dict(await c.response(c.send("Getvar", Channel=chan, Variable="CTI_NOTE")))["Value"] == "vip caller"
    show = await c.response(c.send("Command", Command="queue show mobile"))
    lines = [v for k, v in show if k == "Output"]
    assert lines[0].startswith("mobile has 1 calls (max unlimited) in 'rrmemory' strategy")
    assert any(line.startswith(f"      1. {chan} (wait: ") for line in lines)
    hung = await c.response(c.send("Hangup", Channel=chan))
    assert dict(hung)["Message"] == "Channel Hungup"
    await call.wait("finished", timeout=30)
    assert call.outcome == "abandoned"
    await c.close()


async def test_core_restart_ends_sessions_with_a_bare_eof(pbx: SimPbx) -> None:
    c = await connect(pbx)
    await c.login()
    await c.wait_for(lambda fs: any(frame_name(f) == "SuccessfulAuth" for f in fs))
    before = len(c.data)
    c.send("Command", Command="core restart now")
    await asyncio.wait_for(c.closed.wait(), 5)
    assert len(c.data) == before  # no response, no Shutdown event
    await c.close()
    c2 = await connect(pbx)
    await c2.login()
    booted = dict(await c2.event("FullyBooted"))
    assert booted["Uptime"] == "0"
    await c2.close()


async def test_panoramisk_works_as_a_client(pbx: SimPbx) -> None:
    manager = Manager(host="127.0.0.1", port=pbx.ami_port, username="cti", secret="cti-secret",
                      ping_delay=60, loop=asyncio.get_running_loop())
    connected: list = []
    manager.register_event("AgentConnect", lambda m, msg: connected.append(msg))
    await manager.connect()
    try:
        status = await manager.send_action({"Action": "QueueStatus", "Queue": "mobile"})
        names = [msg.get("Event") for msg in status]
        assert names[:1] == [None] and names[-1] == "QueueStatusComplete"
        assert names.count("QueueMember") == 2
        summary = await manager.send_action({"Action": "QueueSummary"})
        assert [m.Queue for m in summary if m.get("Event") == "QueueSummary"] == ["complaints", "appliances", "mobile"]
        call = pbx.place_call("13800138000", "Wang Wei", patience=600, talk_time=1)
        await call.wait("finished", timeout=30)
        for _ in range(500):
            if connected:
                break
            await asyncio.sleep(0.01)
        assert [m.Interface for m in connected] == [call.agent]
    finally:
        manager.close()


def test_cti_sim_command_runs_until_ctrl_c(tmp_path) -> None:
    """``cti sim`` in the foreground: it serves AMI, and SIGINT stops it cleanly."""
    async def scenario() -> tuple[int, str]:
        agents = tmp_path / "agents.toml"
        agents.write_text('[[queue]]\nname = "mobile"\nstrategy = "leastrecent"\n\n'
                          '[[agent]]\ninterface = "PJSIP/1001"\nname = "Li Na"\nqueues = ["mobile"]\n',
                          encoding="utf-8")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from cti.cli import main; main()", "sim", "--ami-port", "0", "--agi-port", "1", "--calls-per-day", "0",
            "--seed", "1", "--agents-file", str(agents),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**os.environ, "TERM": "dumb"})
        try:
            port = None
            while port is None:
                line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
                assert line, "cti sim exited early"
                if line.startswith("cti sim: AMI on "):
                    port = int(line.split()[4].split(":")[1])
            c = await RawAmiClient("127.0.0.1", port).connect()
            await c.login()
            summary = await c.response(c.send("QueueSummary"))
            frames = await c.wait_for(lambda fs: any(frame_name(f) == "QueueSummaryComplete" for f in fs))
            queues = [dict(f)["Queue"] for f in frames if frame_name(f) == "QueueSummary"]
            assert summary and queues == ["mobile"]
            await c.close()
            proc.send_signal(signal.SIGINT)
            rest = (await asyncio.wait_for(proc.stdout.read(), 20)).decode()
            return await proc.wait(), rest
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    code, rest = asyncio.run(scenario())
    assert code == 0 and "cti sim: stopped after 0 calls." in rest


async def test_a_client_that_stops_reading_is_dropped(pbx: SimPbx) -> None:
    """Like Asterisk's writetimeout: the PBX does not buffer without bound for a stuck client."""
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    await reader.readline()
    writer.write(b"Action: Login\r\nUsername: cti\r\nSecret: cti-secret\r\n\r\n")
    await writer.drain()
    while len(pbx.ami.sessions) != 1 or not next(iter(pbx.ami.sessions)).authenticated:
        await asyncio.sleep(0.01)
    big = [("Event", "VarSet"), ("Privilege", "dialplan,all"), ("Channel", "none"), ("Uniqueid", "none"),
           ("Variable", "X"), ("Value", "x" * 10000)]
    for _ in range(3000):  # 30 MB, never read
        pbx.ami.broadcast(big)
        if not pbx.ami.sessions:
            break
    for _ in range(500):
        if not pbx.ami.sessions:
            break
        await asyncio.sleep(0.01)
    assert not pbx.ami.sessions
    writer.close()


async def test_events_mask_by_class(pbx: SimPbx) -> None:
    """``Events: agent``: only agent-class events (queue events), no call/dialplan ones."""
    c = await connect(pbx)
    await c.login(events="agent")
    call = pbx.place_call("13800138000", "Wang Wei", patience=600, talk_time=1)
    await call.wait("finished", timeout=30)
    await c.event("AgentComplete")
    classes = {dict(f).get("Privilege") for f in c.frames() if "Event" in dict(f)}
    assert classes == {"agent,all"}
    await c.close()


async def test_core_settings_answers_like_asterisk_22_10_1(pbx: SimPbx) -> None:
    """Field order and values of the real Asterisk 22.10.1's answer to the shipped cti user."""
    c = await connect(pbx)
    await c.login()
    frame = await c.response(c.send("CoreSettings"))
    assert [k for k, _ in frame] == ["Response", "ActionID", "AMIversion", "AsteriskVersion", "SystemName",
                                     "CoreMaxCalls", "CoreMaxLoadAvg", "CoreRunUser", "CoreRunGroup",
                                     "CoreMaxFilehandles", "CoreRealTimeEnabled", "CoreCDRenabled",
                                     "CoreHTTPenabled", "SoundsSearchCustomDir"]
    assert (dict(frame)["AMIversion"], dict(frame)["AsteriskVersion"]) == ("11.0.0", "22.10.1")
    await c.close()
