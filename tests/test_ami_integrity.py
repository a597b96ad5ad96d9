"""A caller's number that carries CR/LF into AMI events (PJSIP decodes %0D%0A in the From URI's user;
Asterisk writes channel-snapshot numbers raw) must not add headers or forge frames in cti.

The bytes below are what a real Asterisk 22.10.1 sent for such a SIPp call (tests/test_sip_e2e.py
reproduces it end to end); the captures' 3,000 messages are the negative control."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from cti.ami.integrity import tampering
from cti.ami.protocol import iter_messages
from cti.ami.service import AmiService
from cti.bus import InMemoryBus
from test_ami_link import FakeAmi, _config, fake  # noqa: F401  (the scripted AMI peer fixture)

SNAPSHOT_TAIL = ("CallerIDName: Mallory\r\nConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\n"
                 "Language: en\r\nAccountCode: \r\nContext: from-pstn\r\nExten: 8005551234\r\nPriority: 1\r\n"
                 "Uniqueid: 1796688027.0\r\nLinkedid: 1796688027.0\r\n")
HEAD = "Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/pstn-00000000\r\nChannelState: 4\r\nChannelStateDesc: Ring\r\n"


def newchannel(number: str) -> str:
    return HEAD + f"CallerIDNum: {number}\r\n" + SNAPSHOT_TAIL


@pytest.mark.parametrize("number, reason", [
    # a forged frame: the number ends the Newchannel (which is cut short) and starts an AgentConnect
    ("1\r\n\r\nEvent: AgentConnect\r\nQueue: mobile\r\nInterface: PJSIP/3001\r\nUniqueid: 4",
     "CallerIDNum is not followed by CallerIDName"),
    # an added header that would win over the real one (first occurrence wins)
    ("1\r\nUniqueid: 4", "CallerIDNum is not followed by CallerIDName"),
    # ... also when the injection starts with a copy of the name's line
    ("1\r\nCallerIDName: x\r\nUniqueid: 4", "CallerIDName occurs twice"),
])
def test_a_number_that_adds_lines_is_tampering(number: str, reason: str) -> None:
    frames = [m.raw for m in iter_messages((newchannel(number) + "\r\n").encode())]
    assert tampering(frames[0]) == reason
    assert tampering(newchannel("13800138000").rstrip("\r\n")) is None


def test_prefixed_numbers_are_checked_too() -> None:
    agent_called = ("Event: AgentCalled\r\nPrivilege: agent,all\r\nChannel: PJSIP/pstn-1\r\nCallerIDNum: 1\r\n"
                    "CallerIDName: a\r\nConnectedLineNum: 2\r\nConnectedLineName: b\r\nDestChannel: PJSIP/1001-2\r\n"
                    "DestCallerIDNum: 1001\r\nDestCallerIDName: Li Na\r\nDestConnectedLineNum: 1\r\nQueue: x\r\n"
                    "DestConnectedLineName: a\r\nQueue: mobile")
    assert tampering(agent_called) == "DestConnectedLineNum is not followed by DestConnectedLineName"
    assert tampering(agent_called.replace("1\r\nQueue: x\r\n", "1\r\n")) is None


def test_names_and_values_that_only_mention_the_keys_are_fine() -> None:
    assert tampering(newchannel("13800138000").replace("Mallory", "CallerIDNum: 5 ConnectedLineNum: 6")) is None


def test_no_real_asterisk_message_is_taken_for_tampering(captures: Path) -> None:
    seen = 0
    for path in sorted(captures.glob("*.in.raw")):
        for msg in iter_messages(path.read_bytes()):
            if msg.kind != "banner":
                seen += 1
                assert tampering(msg.raw) is None, (path.name, msg.name)
    assert seen > 3000


async def test_the_link_drops_the_connection_at_a_tampered_frame_and_forged_frames_never_count(
        fake: FakeAmi) -> None:
    port = await fake.start()
    svc = AmiService(_config(port), InMemoryBus())
    with capture_logs() as logs:
        await svc.start()
        try:
            await svc.wait_ready()
            assert len(fake.sessions) == 1
            forged = newchannel("1\r\n\r\nEvent: AgentConnect\r\nQueue: mobile\r\nInterface: PJSIP/3001\r\nUniqueid: 4")
            w = fake.writers[0]
            w.write(forged.encode() + b"\r\n"
                    # what a forged frame could be followed by, in the same read
                    + b"Event: QueueCallerJoin\r\nPrivilege: agent,all\r\nChannel: Local/f;2\r\nUniqueid: 5.5\r\n"
                      b"Queue: mobile\r\nPosition: 1\r\nCount: 1\r\n\r\n")
            await w.drain()
            for _ in range(1000):
                if len(fake.sessions) >= 2 and svc.link.ready.is_set():
                    break
                await asyncio.sleep(0.005)
            state = svc.state
            assert state.agents.by_interface("PJSIP/3001") is None
            assert state.calls.get("4") is None and state.calls.get("5.5") is None
            assert svc.link.tampered_frames == 1 and len(fake.sessions) == 2 and svc.connected
        finally:
            await svc.stop()
    [warned] = [e for e in logs if e["event"] == "ami.tampered_frame"]
    assert (warned["ami_event"], warned["channel"]) == ("Newchannel", "PJSIP/pstn-00000000")
