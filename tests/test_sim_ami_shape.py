"""The simulator's AMI output has the shape of the real Asterisk captures.

For the same scenario (answered call, abandoned call, ring-no-answer, list actions) the simulator
must send the same event names, in the same order for the queue/agent events and the queue
caller's channel, with the same header names in the same order per event type. Values (channel
names, ids, times) are ignored.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from cti.sim import ami_format
from cti.sim.config import AgentConfig, SimConfig
from cti.sim.pbx import SimPbx
from cti.sim.testing import RawAmiClient, ScriptedAgiServer, frame_name, split_frames

# ---- a tiny reader for the capture files --------------------------------------------------


def read_log(path: Path) -> list[tuple[str, bytes]]:
    """Records ``(dir, payload)`` of a ``.log`` capture (``#@ seq=.. dir=.. len=N`` + N bytes + LF)."""
    data = path.read_bytes()
    records = []
    pos = 0
    while pos < len(data):
        end = data.index(b"\n", pos)
        header = data[pos:end].decode()
        pos = end + 1
        if not header.startswith("#@ seq="):
            continue
        fields = dict(item.split("=", 1) for item in header[3:].split())
        length = int(fields["len"])
        records.append((fields["dir"], data[pos:pos + length]))
        pos += length + 1
    return records


def read_in_raw(path: Path) -> list[list[tuple[str, str]]]:
    """Frames of a ``.in.raw`` capture (the bytes Asterisk sent)."""
    return split_frames(path.read_bytes())


def shapes(frames) -> dict[str, set[tuple[str, ...]]]:
    result: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for f in frames:
        result[frame_name(f)].add(tuple(k for k, _ in f))
    return result


QUEUE_EVENTS = {
    "QueueCallerJoin", "AgentCalled", "AgentRingNoAnswer", "AgentConnect", "AgentComplete",
    "QueueCallerAbandon", "QueueCallerLeave", "QueueMemberStatus", "QueueMemberPause",
}
CALLER_EVENTS = QUEUE_EVENTS | {"Newchannel", "Newstate", "MusicOnHoldStart", "MusicOnHoldStop", "Hangup", "Cdr"}


def queue_sequence(frames) -> list[str]:
    return [frame_name(f) for f in frames if frame_name(f) in QUEUE_EVENTS]


def caller_sequence(frames, caller_channel: str) -> list[str]:
    """Events about the queued caller's channel (``Channel`` header), restricted to CALLER_EVENTS."""
    return [frame_name(f) for f in frames
            if frame_name(f) in CALLER_EVENTS - {"QueueMemberStatus", "QueueMemberPause"}
            and dict(f).get("Channel") == caller_channel]


def queued_channel(frames) -> str:
    return next(dict(f)["Channel"] for f in frames if frame_name(f) == "QueueCallerJoin")


# ---- a simulator configured like the captured lab -----------------------------------------

LAB_AGENTS = (
    AgentConfig("Local/3001@agents/n", "Sun Li", ("complaints",), answer_delay=2.0, aht=5),
    AgentConfig("Local/3002@agents/n", "Zhou Qiang", ("complaints",), answer_delay=2.0, aht=5),
    AgentConfig("Local/2001@agents/n", "Zhao Min", ("appliances",), answer_delay=2.0, aht=5),
    AgentConfig("Local/2002@agents/n", "Liu Yang", ("appliances",), answer_delay=2.0, aht=5),
    AgentConfig("Local/1001@agents/n", "Li Na", ("mobile",), answer_delay=2.0, aht=5),
    AgentConfig("Local/1002@agents/n", "Chen Jie", ("mobile",), answer_delay=2.0, aht=5),
)


def route(env: dict[str, str]) -> dict[str, str]:
    queue = {"13800138000": "mobile", "13912345678": "mobile", "13600136000": "appliances",
                 "13500135001": "mobile"}.get(
        env["agi_callerid"], "complaints")
    return {"CTI_QUEUE": queue, "CTI_PRIORITY": "5", "CTI_GREETING": "hello", "CTI_LANG": "zh",
            "CTI_CUSTOMER_ID": "C0001234", "CTI_ACTION": "queue"}


@pytest.fixture
async def agi():
    server = await ScriptedAgiServer(route).start()
    yield server
    await server.stop()


@pytest.fixture
async def lab(agi):
    config = SimConfig(ami_port=0, agi_port=agi.port, speed=40, seed=7, trunk="Local/8005551234@from-pstn",
                       context="from-pstn", agents=LAB_AGENTS, auth_fail_delay=0.05)
    async with SimPbx(config) as pbx:
        yield pbx


async def client(pbx: SimPbx, user: str = "cti", secret: str = "cti-secret") -> RawAmiClient:
    c = await RawAmiClient("127.0.0.1", pbx.ami_port).connect()
    await c.login(user, secret)
    return c


async def finish(c: RawAmiClient) -> list:
    await c.response(c.send("Logoff"))
    frames = await c.wait_for(lambda fs: False if not c.closed.is_set() else True, timeout=5)
    await c.close()
    return frames


def assert_same_field_order(sim_frames, captured_frames, captures: Path) -> None:
    """Every event type the simulator sent has a header sequence Asterisk sent for that type, in
    this scenario's capture or in another one (Asterisk itself varies between runs, e.g.
    ``AgentComplete`` has no ``Dest*`` fields when the agent leg is already gone)."""
    mine = shapes(sim_frames)
    theirs = shapes(captured_frames)
    anywhere: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for path in sorted(captures.glob("ami-*.in.raw")):
        for name, seqs in shapes(read_in_raw(path)).items():
            anywhere[name] |= seqs
    for name, seqs in mine.items():
        allowed = theirs.get(name, set()) | anywhere.get(name, set())
        assert allowed, f"{name}: the simulator sends an event type no capture has"
        for seq in seqs:
            assert seq in allowed, f"{name}: header order {seq} not in captures {sorted(allowed)}"


# ---- tests --------------------------------------------------------------------------------


def test_templates_are_those_of_the_captures(captures: Path) -> None:
    longest: dict[str, tuple[str, ...]] = {}
    for path in sorted(captures.glob("ami-*.in.raw")):
        for frame in read_in_raw(path):
            names = tuple(k for k, _ in frame)
            if "Event" not in dict(frame) or len(set(names)) != len(names) or frame_name(frame) == "Fake":
                continue
            name = frame_name(frame)
            if len(names) > len(longest.get(name, ())):
                longest[name] = names
    assert set(longest) == set(ami_format.EVENT_FIELDS)
    for name, names in longest.items():
        assert ("Event",) + ami_format.EVENT_FIELDS[name] == names


def test_log_and_in_raw_agree(captures: Path) -> None:
    """The reader: the Asterisk-side records of a .log, concatenated, are the .in.raw."""
    records = read_log(captures / "ami-call-answered.log")
    sent = b"".join(payload for direction, payload in records if direction == "asterisk>cti")
    assert sent == (captures / "ami-call-answered.in.raw").read_bytes()


async def test_answered_call_has_the_captured_shape(lab: SimPbx, captures: Path) -> None:
    c = await client(lab)
    call = lab.place_call("13800138000", "Wang Wei", patience=600)
    await call.wait("finished", timeout=30)
    assert call.outcome == "answered" and call.queue == "mobile" and call.agent == "Local/1001@agents/n"
    frames = await finish(c)
    captured = read_in_raw(captures / "ami-call-answered.in.raw")

    assert queue_sequence(frames) == queue_sequence(captured)
    assert caller_sequence(frames, queued_channel(frames)) == caller_sequence(captured, queued_channel(captured))
    assert_same_field_order(frames, captured, captures)
    # the dialplan-class user sees the dialplan and the AGI commands, like the capture
    names = {frame_name(f) for f in frames}
    assert {"Newexten", "VarSet", "AGIExecStart", "AGIExecEnd", "BridgeEnter", "Cdr", "FullyBooted",
            "SuccessfulAuth"} <= names
    varsets = {(dict(f)["Variable"], dict(f)["Value"]) for f in frames if frame_name(f) == "VarSet"}
    assert ("CTI_QUEUE", "mobile") in varsets and ("AGISTATUS", "SUCCESS") in varsets


async def test_abandoned_call_has_the_captured_shape(lab: SimPbx, captures: Path) -> None:
    c = await client(lab)
    for iface in ("Local/1001@agents/n", "Local/1002@agents/n"):
        r = await c.response(c.send("QueuePause", Queue="mobile", Interface=iface, Paused="true", Reason="lunch"))
        assert dict(r)["Message"] == "Interface paused successfully"
    call = lab.place_call("13912345678", "Li Ming", patience=7)
    await call.wait("finished", timeout=30)
    assert call.outcome == "abandoned"
    for iface in ("Local/1001@agents/n", "Local/1002@agents/n"):
        await c.response(c.send("QueuePause", Queue="mobile", Interface=iface, Paused="false"))
    frames = await finish(c)
    captured = read_in_raw(captures / "ami-call-abandoned.in.raw")

    assert queue_sequence(frames) == queue_sequence(captured)
    assert caller_sequence(frames, queued_channel(frames)) == caller_sequence(captured, queued_channel(captured))
    assert_same_field_order(frames, captured, captures)
    abandon = dict(next(f for f in frames if frame_name(f) == "QueueCallerAbandon"))
    assert int(abandon["HoldTime"]) >= 6 and abandon["OriginalPosition"] == "1"


async def test_ring_no_answer_has_the_captured_shape(agi, captures: Path) -> None:
    agents = tuple(AgentConfig(a.interface, a.name, a.queues, answer_delay=2.0, aht=5,
                               noanswer=a.name == "Zhao Min") for a in LAB_AGENTS)
    config = SimConfig(ami_port=0, agi_port=agi.port, speed=60, seed=3, trunk="Local/8005551234@from-pstn",
                       context="from-pstn", agents=agents)
    async with SimPbx(config) as pbx:
        c = await client(pbx)
        call = pbx.place_call("13600136000", "张伟", patience=600)
        await call.wait("finished", timeout=30)
        assert call.rung == ["Local/2001@agents/n", "Local/2002@agents/n"] and call.agent == "Local/2002@agents/n"
        frames = await finish(c)
    captured = read_in_raw(captures / "ami-call-ringnoanswer.in.raw")
    assert queue_sequence(frames) == queue_sequence(captured)
    assert_same_field_order(frames, captured, captures)
    rna = dict(next(f for f in frames if frame_name(f) == "AgentRingNoAnswer"))
    assert rna["RingTime"] == "15000" and rna["MemberName"] == "Zhao Min"


async def test_least_privilege_user_gets_no_dialplan_events(lab: SimPbx, captures: Path) -> None:
    c = await client(lab, "cti-min", "cti-min-secret")
    call = lab.place_call("13500135001", 'Evil "Bob"\r\nEvent: Fake\r\n\r\nx', patience=600)
    await call.wait("finished", timeout=30)
    r = await c.response(c.send("Command", Command="dialplan reload"))
    assert dict(r) == {"Response": "Error", "ActionID": dict(r)["ActionID"], "Message": "Permission denied"}
    frames = await finish(c)
    names = [frame_name(f) for f in frames]
    assert not {"Newexten", "VarSet", "AGIExecStart", "AGIExecEnd", "SuccessfulAuth", "Cdr", "Fake"} & set(names)
    captured = read_in_raw(captures / "ami-least-privilege.in.raw")
    assert queue_sequence(frames) == queue_sequence(captured)
    assert_same_field_order(frames, captured, captures)
    # the hostile name is C-escaped in channel fields: no forged frame
    join = dict(next(f for f in frames if frame_name(f) == "QueueCallerJoin"))
    assert join["CallerIDName"] == 'Evil \\"Bob\\"\\r\\nEvent: Fake\\r\\n\\r\\nx'


async def test_hostile_caller_name_forges_frames_for_a_dialplan_user_as_in_the_capture(lab: SimPbx) -> None:
    """Faithful to Asterisk: Newexten.AppData carries the raw name (CR/LF included)."""
    c = await client(lab)
    call = lab.place_call("13500135000", 'Evil "Bob"\r\nEvent: Fake\r\nChannel: Local/x\r\n\r\nx', patience=600)
    await call.wait("finished", timeout=30)
    frames = await finish(c)
    names = [frame_name(f) for f in frames]
    assert "Fake" in names
    join = dict(next(f for f in frames if frame_name(f) == "QueueCallerJoin"))
    assert join["CallerIDName"] == 'Evil \\"Bob\\"\\r\\nEvent: Fake\\r\\nChannel: Local/x\\r\\n\\r\\nx'


async def test_list_actions_have_the_captured_shape(lab: SimPbx, captures: Path) -> None:
    c = await client(lab)
    for iface in ("Local/3001@agents/n", "Local/3002@agents/n"):
        await c.response(c.send("QueuePause", Queue="complaints", Interface=iface, Paused="true", Reason="meeting"))
    call = lab.place_call("13700001111", "Zhao Lei", patience=600)
    await call.wait("queued", timeout=30)
    ids = [c.send("QueueStatus"), c.send("QueueStatus", Queue="complaints"), c.send("QueueSummary"),
           c.send("CoreShowChannels"), c.send("Status")]
    frames = await c.wait_for(lambda fs: sum(1 for f in fs if frame_name(f).endswith("Complete")) >= 5)
    call.hangup()
    await call.wait("finished", timeout=30)
    await finish(c)
    listed = [f for f in frames if dict(f).get("ActionID") in ids]
    captured = [f for f in read_in_raw(captures / "ami-actions.in.raw")
                if frame_name(f) in {"QueueParams", "QueueMember", "QueueEntry", "QueueStatusComplete",
                                     "QueueSummary", "QueueSummaryComplete", "CoreShowChannel",
                                     "CoreShowChannelsComplete", "Status", "StatusComplete"}
                or dict(f).get("EventList") == "start"]
    mine, theirs = shapes(listed), shapes(captured)
    assert set(mine) == set(theirs)
    for name in mine:
        assert mine[name] <= theirs[name], name
    entry = dict(next(f for f in listed if frame_name(f) == "QueueEntry"))
    assert entry["Queue"] == "complaints" and entry["Priority"] == "5" and entry["CallerIDName"] == "Zhao Lei"
    complete = [dict(f) for f in listed if frame_name(f) == "QueueStatusComplete"]
    # 3 QueueParams + 6 QueueMember + 1 QueueEntry; complaints only: 1 + 2 + 1
    assert [x["ListItems"] for x in complete] == ["10", "4"]


def _capture_responses(captures: Path) -> dict[str, tuple[bytes, bytes]]:
    """ActionID -> (action bytes cti sent, the response frame Asterisk sent) from ami-actions.log."""
    actions: dict[str, bytes] = {}
    stream = b""
    for direction, payload in read_log(captures / "ami-actions.log"):
        if direction == "cti>asterisk":
            for block in payload.split(b"\r\n\r\n"):
                for line in block.split(b"\r\n"):
                    if line.startswith(b"ActionID: "):
                        actions[line[10:].decode()] = block + b"\r\n\r\n"
        else:
            stream += payload
    result = {}
    for block in stream.split(b"\r\n\r\n"):
        if block.startswith(b"Response: "):
            for line in block.split(b"\r\n"):
                if line.startswith(b"ActionID: ") and line[10:].decode() in actions:
                    aid = line[10:].decode()
                    result[aid] = (actions[aid], block + b"\r\n\r\n")
    return result


@pytest.mark.parametrize("action_id", [
    "cti-41",  # QueuePause of an unknown interface
    "cti-59",  # QueueAdd ok
    "cti-60",  # QueueAdd duplicate
    "cti-62",  # QueueRemove ok
    "cti-63",  # QueueRemove not there
    "cti-64",  # QueueAdd to an unknown queue
    "cti-65",  # Command dialplan reload
    "cti-67",  # unknown CLI command
    "cti-68",  # unknown action
    "cti-55",  # Getvar of a global
    "cti-56",  # Setvar of a global
    "cti-58",  # Getvar on an unknown channel
    "cti-43",  # failing synchronous Originate
])
async def test_action_replayed_from_capture_gets_the_captured_bytes(lab: SimPbx, captures: Path,
                                                                    action_id: str) -> None:
    replay = _capture_responses(captures)
    c = await client(lab)
    # the capture's earlier steps that this one depends on
    if action_id in ("cti-60", "cti-62"):
        c.send_raw(replay["cti-59"][0])
        await c.response("cti-59")
    if action_id == "cti-63":
        for earlier in ("cti-59", "cti-62"):
            c.send_raw(replay[earlier][0])
            await c.response(earlier)
    sent, expected = replay[action_id]
    c.send_raw(sent)
    got = await c.response(action_id)
    await c.close()
    assert "".join(f"{k}: {v}\r\n" for k, v in got).encode() + b"\r\n" == expected


async def test_busy_overlapping_callers_keep_every_call_consistent(agi, captures: Path) -> None:
    """Like ami-busy: six overlapping callers in three queues, priorities 0/3/5, ringall and
    rrmemory. Event shapes match the capture and every call's queue events pair up."""
    plan = {  # number -> (queue, priority)
        "13811110001": ("mobile", 0), "13811110002": ("mobile", 3), "13811110003": ("appliances", 5),
        "13811110004": ("appliances", 0), "13811110005": ("complaints", 3), "13811110006": ("mobile", 5),
    }
    agi.route = lambda env: {"CTI_QUEUE": plan[env["agi_callerid"]][0], "CTI_PRIORITY": str(plan[env["agi_callerid"]][1]),
                             "CTI_GREETING": "hello"}
    config = SimConfig(ami_port=0, agi_port=agi.port, speed=40, seed=11, trunk="Local/8005551234@from-pstn",
                       context="from-pstn", agents=LAB_AGENTS)
    async with SimPbx(config) as pbx:
        c = await client(pbx)
        calls = [pbx.place_call(number, f"Busy {i}", patience=600, talk_time=5)
                 for i, number in enumerate(plan, 1)]
        for call in calls:
            await call.wait("finished", timeout=60)
        frames = await finish(c)
    assert all(call.outcome == "answered" for call in calls)
    assert [call.queue for call in calls] == [q for q, _ in plan.values()]
    assert_same_field_order(frames, read_in_raw(captures / "ami-busy.in.raw"), captures)
    by_caller: dict[str, list[dict[str, str]]] = defaultdict(list)
    for f in frames:
        d = dict(f)
        if frame_name(f) in QUEUE_EVENTS - {"QueueMemberStatus", "QueueMemberPause"}:
            by_caller[d["Uniqueid"]].append({"Event": frame_name(f), **d})
    assert set(by_caller) == {call.uniqueid for call in calls}
    for call in calls:
        events = by_caller[call.uniqueid]
        names = [e["Event"] for e in events]
        assert names[0] == "QueueCallerJoin" and names[-1] == "AgentComplete"
        assert names.count("QueueCallerLeave") == names.count("AgentConnect") == 1
        connect = next(e for e in events if e["Event"] == "AgentConnect")
        assert connect["Interface"] == call.agent
        assert all(e["Queue"] == call.queue for e in events)
    complaints = next(call for call in calls if call.queue == "complaints")
    assert sorted(complaints.rung) == ["Local/3001@agents/n", "Local/3002@agents/n"]  # ringall
