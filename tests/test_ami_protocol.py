"""The sans-IO AMI parser: bytes in, messages out, whatever the reads and the peer do."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti.ami.events import AgentRingNoAnswer, OriginateResponse, QueueMember, QueueMemberStatus, normalize
from cti.ami.protocol import AmiMessage, AmiParser, encode_action, iter_messages

CRLF = b"\r\n"


def feed_all(data: bytes, cuts: list[int] | None = None) -> tuple[list[AmiMessage], AmiParser]:
    p = AmiParser()
    out: list[AmiMessage] = []
    prev = 0
    for c in sorted(set(cuts or [])) + [len(data)]:
        out += p.feed(data[prev:c])
        prev = c
    return out, p


def test_banner_has_no_blank_line_and_is_followed_by_a_response() -> None:
    msgs, _ = feed_all(b"Asterisk Call Manager/11.0.0\r\nResponse: Error\r\nActionID: cti-1\r\n"
                       b"Message: Authentication failed\r\n\r\n")
    assert [(m.kind, m.name) for m in msgs] == [("banner", "11.0.0"), ("response", "Error")]
    assert msgs[1].action_id == "cti-1" and msgs[1].get("Message") == "Authentication failed"


def test_banner_split_byte_by_byte() -> None:
    data = b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nPing: Pong\r\n\r\n"
    msgs, _ = feed_all(data, list(range(1, len(data))))
    assert [(m.kind, m.name) for m in msgs] == [("banner", "11.0.0"), ("response", "Success")]


def test_originate_response_is_an_event_though_it_carries_response(captures: Path) -> None:
    msgs = list(iter_messages((captures / "ami-call-answered.in.raw").read_bytes()))
    [orig] = [m for m in msgs if m.name == "OriginateResponse"]
    assert orig.kind == "event" and orig.get("Response") == "Success" and orig.action_id == "cti-8"
    e = normalize(orig)
    assert isinstance(e, OriginateResponse) and e.uniqueid == "1795372412.0" and e.reason == 4


def test_event_header_wins_even_when_response_comes_first() -> None:
    [m] = list(iter_messages(b"Response: Success\r\nActionID: 9\r\nEvent: OriginateResponse\r\n\r\n"))
    assert (m.kind, m.name) == ("event", "OriginateResponse")


def test_command_output_keeps_every_output_line(captures: Path) -> None:
    msgs = list(iter_messages((captures / "ami-actions.in.raw").read_bytes()))
    [show] = [m for m in msgs if m.action_id == "cti-66"]
    lines = show.getall("Output")
    assert lines[0].startswith("complaints has 1 calls") and len(lines) == 8 and lines[-2:] == ["", ""]
    assert show.fields["Output"] == lines[0]  # first occurrence in the dict


def test_units_and_field_names_follow_the_captures(captures: Path) -> None:
    msgs = list(iter_messages((captures / "ami-call-ringnoanswer.in.raw").read_bytes()))
    [rna] = [normalize(m) for m in msgs if m.name == "AgentRingNoAnswer"]
    assert isinstance(rna, AgentRingNoAnswer) and rna.ring_time_ms == 15000 and rna.member_name == "Zhao Min"
    acts = list(iter_messages((captures / "ami-actions.in.raw").read_bytes()))
    item = normalize([m for m in acts if m.name == "QueueMember"][0])
    assert isinstance(item, QueueMember) and item.interface == "Local/3001@agents/n" and item.member_name == "Sun Li"
    status = normalize([m for m in msgs if m.name == "QueueMemberStatus"][0])
    assert isinstance(status, QueueMemberStatus) and status.interface == "Local/2001@agents/n"


def test_hostile_frames_do_not_crash_or_forge_messages(captures: Path) -> None:
    msgs, p = feed_all((captures / "ami-hostile-callerid.in.raw").read_bytes())
    assert not any(m.name.startswith("Fake") for m in msgs)
    forged = [m for m in msgs if m.name == "Newexten" and m.getall("Event") == ["Newexten", "Fake"]]
    assert forged, "the capture's forged headers are kept as repeats, never as the message's identity"
    for m in forged:
        assert m.fields["Event"] == "Newexten" and m.fields["Channel"] != "Local/x"
        assert m.is_dialplan_class and normalize(m) is None
    assert p.stats.unclassified == 3


def test_malformed_lines_are_skipped_and_counted() -> None:
    [m] = list(iter_messages(b"Event: Hangup\r\nthis is not a header\r\nUniqueid: 1.2\r\n\x00\x01garbage\r\n\r\n"))
    assert m.fields == {"Event": "Hangup", "Uniqueid": "1.2"} and m.malformed_lines == 2


def test_garbage_frames_are_dropped_and_counted() -> None:
    msgs, p = feed_all(b"hello\r\nworld\r\n\r\n\xff\xfe\r\n\r\nEvent: FullyBooted\r\nUptime: 3\r\n\r\n")
    assert [m.name for m in msgs] == ["FullyBooted"] and p.stats.unclassified == 2


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    [m] = list(iter_messages(b"Event: Newchannel\r\nCallerIDName: \xff\xfeBob\r\n\r\n"))
    assert m.get("CallerIDName") == "\ufffd\ufffdBob"


def test_a_frame_cut_by_a_disconnect_is_discarded_on_reset() -> None:
    p = AmiParser()
    assert p.feed(b"Asterisk Call Manager/11.0.0\r\nEvent: QueueCallerJoin\r\nQueue: mob")[0].kind == "banner"
    p.reset()
    msgs = p.feed(b"Asterisk Call Manager/11.0.0\r\nEvent: FullyBooted\r\nUptime: 0\r\n\r\n")
    assert [(m.kind, m.name) for m in msgs] == [("banner", "11.0.0"), ("event", "FullyBooted")]
    assert msgs[1].fields == {"Event": "FullyBooted", "Uptime": "0"}
    assert p.stats.discarded_bytes == len(b"Event: QueueCallerJoin\r\nQueue: mob")


def test_an_endless_frame_is_dropped_instead_of_eating_memory() -> None:
    p = AmiParser(max_frame=1000)
    p.feed(b"Asterisk Call Manager/11.0.0\r\n")
    for _ in range(10):
        p.feed(b"X" * 300)
    assert p.pending_bytes <= 1000 and p.stats.discarded_bytes > 0
    assert [m.name for m in p.feed(b"\r\n\r\nEvent: Ping\r\n\r\n")] == ["Ping"]


def test_encode_action_cannot_be_used_to_inject_headers() -> None:
    data = encode_action("Originate", {"CallerID": 'Evil\r\nAction: Hangup\r\n\r\n', "Async": True,
                                       "Variable": ["A=1", "B=2"], "Skip": None})
    assert data.count(b"\r\n\r\n") == 1 and data.endswith(b"\r\n\r\n")
    assert data.split(b"\r\n")[:5] == [b"Action: Originate", b"CallerID: Evil  Action: Hangup    ",
                                       b"Async: true", b"Variable: A=1", b"Variable: B=2"]


CAPTURE_NAMES = ["ami-busy", "ami-hostile-callerid", "ami-actions", "ami-call-ringnoanswer"]


@pytest.mark.parametrize("name", CAPTURE_NAMES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_split_frames_at_arbitrary_boundaries_give_identical_messages(captures: Path, name: str, data) -> None:
    raw = (captures / f"{name}.in.raw").read_bytes()
    if name == "ami-busy":
        raw = raw[:60000]
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=len(raw) - 1), max_size=60))
    whole, p1 = feed_all(raw)
    split, p2 = feed_all(raw, cuts)
    assert split == whole
    assert [m.headers for m in split] == [m.headers for m in whole]
    assert (p1.stats, p1.pending_bytes) == (p2.stats, p2.pending_bytes)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_arbitrary_bytes_never_crash_and_split_invariance_holds(blob: bytes, cuts: list[int]) -> None:
    data = b"Asterisk Call Manager/11.0.0\r\n" + blob + b"\r\n\r\nEvent: End\r\n\r\n"
    whole, _ = feed_all(data)
    split, _ = feed_all(data, [c for c in cuts if 0 < c < len(data)])
    assert split == whole and whole[-1].name == "End"
    for m in whole:
        m.headers, m.fields, normalize(m)  # lazy parts never raise
