"""The simulated Asterisk side (cti.agi.peer) answers the captured commands byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
from captures_log import read_log

from cti.agi.peer import AsteriskChannel, AsteriskCommandReader, run_agi_call
from cti.agi.protocol import AgiReplyParser


def _dialogue(captures: Path, name: str) -> tuple[list[bytes], bytes]:
    """(command lines the AGI server sent, everything Asterisk sent after the environment)."""
    records = read_log(captures / f"{name}.log")
    reader = AsteriskCommandReader()
    commands = [line for r in records if r.direction == "agi>asterisk" for line in reader.feed(r.data)]
    raw = b"".join(r.data for r in records if r.direction == "asterisk>agi")
    return commands, raw[raw.index(b"\n\n") + 2 :]


@pytest.mark.parametrize(
    "name, caller_name, missing",
    [
        ("agi-session", "Wang Wei", ()),
        ("agi-session-actions", "Zhao Lei", ()),
        ("agi-session-abandoned", "Li Ming", ()),
        ("agi-session-ringnoanswer", "张伟", ("cti-no-such-sound",)),
    ],
)
def test_replies_are_byte_exact_with_asterisk(captures: Path, name: str, caller_name: str, missing: tuple[str, ...]) -> None:
    commands, expected = _dialogue(captures, name)
    number = AgiReplyParser().feed(expected)[0].data  # GET VARIABLE CALLERID(num) comes first
    channel = AsteriskChannel({"CALLERID(num)": number, "CALLERID(name)": caller_name}, missing_sounds=missing)
    assert b"".join(channel.execute(c) for c in commands) == expected
    assert channel.failed == bool(missing)  # AGISTATUS=FAILURE after a missing sound
    assert channel.set_vars["CTI_GREETING"] == "hello"


def test_dead_channel_replies_like_asterisk(captures: Path) -> None:
    commands, expected = _dialogue(captures, "agi-caller-hangup")
    assert expected.startswith(b"HANGUP\n")
    channel = AsteriskChannel({"CALLERID(num)": "075588889999"})
    channel.dead = True  # the caller hung up: Asterisk wrote HANGUP
    assert b"HANGUP\n" + b"".join(channel.execute(c) for c in commands) == expected


async def test_refused_connection_is_failure() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    out = await run_agi_call("127.0.0.1", port, b"agi_network: yes\n\n")
    assert out.status == "FAILURE" and out.error and out.commands == []
