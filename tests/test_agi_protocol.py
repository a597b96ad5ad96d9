"""FastAGI sans-IO protocol against the real Asterisk 22.10.1 bytes of shared/asterisk-captures."""

from __future__ import annotations

from pathlib import Path

import pytest
from captures_log import read_log
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.agi.peer import AsteriskCommandReader, asterisk_env, environment_block
from cti.agi.protocol import (
    MAX_VALUE_BYTES,
    AgiHangup,
    AgiReply,
    AgiReplyParser,
    AgiUnexpectedLine,
    EnvironmentParser,
    EnvironmentTooLarge,
    command,
    is_valid_variable_name,
    parse_command_args,
    parse_environment,
    quote_arg,
    sanitize_value,
    set_variable,
    verbose,
)

# capture -> (uniqueid, callerid, calleridname)
ENV_CAPTURES = {
    "agi-session": ("1795372412.1", "13800138000", "Wang Wei"),
    "agi-session-abandoned": (None, "13912345678", "Li Ming"),
    "agi-session-actions": (None, "13700001111", "Zhao Lei"),
    "agi-session-ringnoanswer": (None, "13600136000", "张伟"),
    "agi-caller-hangup": ("1795372467.15", "075588889999", "Chen Jing"),
    "agi-hostile-callerid": ("1795372507.23", "13500135000", "Evil \"Bob\" O'Brien \\ 王伟;x=1"),
    "agi-least-privilege": ("1795432603.1", "13500135001", "unknown"),
    "agi-priority-low": ("1795432615.5", "13700002222", "Sun Yue"),
    "agi-priority-high": ("1795432616.7", "13700003333", "Ma Lin"),
    "agi-transfer": (None, "13700004444", "Guo Jun"),
    **{f"agi-busy-{i}": (None, f"1381111000{i}", None) for i in range(1, 7)},
}


def _raw(captures: Path, name: str) -> bytes:
    return (captures / f"{name}.in.raw").read_bytes()


def _env_block_end(raw: bytes) -> int:
    return raw.index(b"\n\n") + 2


@pytest.mark.parametrize("name", sorted(ENV_CAPTURES))
def test_every_captured_environment_parses(captures: Path, name: str) -> None:
    raw = _raw(captures, name)
    env, rest = parse_environment(raw)
    assert env is not None
    uniqueid, callerid, calleridname = ENV_CAPTURES[name]
    if uniqueid:
        assert env.uniqueid == uniqueid
    assert env.callerid == callerid
    if calleridname:
        assert env.calleridname == calleridname
    assert env.extension == "8005551234"
    assert env.context == "from-pstn"
    assert env.network_script == "incoming"
    assert env.request == "agi://127.0.0.1:4573/incoming"
    assert env.priority == 3 and env.callingpres == 0
    assert env.language == "en" and env.dnid == "unknown" and env.rdnis == "unknown"
    assert env.channel.startswith("Local/8005551234@from-pstn")
    assert env.args == ()
    assert env["agi_accountcode"] == "" and env["agi_version"] == "22.10.1"
    assert len(env) == 22 and env.strict
    assert rest == raw[_env_block_end(raw) :]
    assert env.suspicious == (name == "agi-hostile-callerid")


def test_hostile_caller_name_forges_nothing(captures: Path) -> None:
    env, rest = parse_environment(_raw(captures, "agi-hostile-callerid"))
    assert env is not None and rest == b""
    # The name keeps its first line only (its trailing CR dropped); the fake
    # "agi_extension: 911" written *before* the real one does not win.
    assert env.calleridname == "Evil \"Bob\" O'Brien \\ 王伟;x=1"
    assert env.extension == "8005551234"
    assert env["agi_callingpres"] == "0" and env["agi_threadid"] == "139897454151360"
    assert env.ignored_lines == 6  # Event: Fake, Channel:, lone CR, fake extension, SET VARIABLE, \x01\tend
    assert all("\n" not in v and "\r" not in v for v in env.values())
    assert all(k.startswith("agi_") and " " not in k for k in env)
    assert not any("SET VARIABLE" in v or "SET VARIABLE" in k for k, v in env.items())


def test_a_line_of_only_cr_does_not_end_the_block(captures: Path) -> None:
    raw = _raw(captures, "agi-hostile-callerid")
    assert b"\n\r\n" in raw  # the capture really has such a line
    p = EnvironmentParser()
    assert p.feed(raw[: raw.index(b"\n\r\n") + 3]) is None
    assert p.feed(raw[raw.index(b"\n\r\n") + 3 :]).extension == "8005551234"


@pytest.mark.parametrize("name", ["agi-session", "agi-hostile-callerid", "agi-session-ringnoanswer"])
def test_environment_split_at_every_byte_gives_the_same_result(captures: Path, name: str) -> None:
    raw = _raw(captures, name)
    whole, rest = parse_environment(raw)
    for cut in range(len(raw) + 1):
        p = EnvironmentParser()
        first = p.feed(raw[:cut])
        got = first if first is not None else p.feed(raw[cut:])
        assert got == whole, cut
        assert (p.rest if first is None else p.rest + raw[cut:]) == rest


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_environment_in_random_chunks(data: st.DataObject) -> None:
    from conftest import CAPTURES as root
    name = data.draw(st.sampled_from(["agi-session", "agi-hostile-callerid", "agi-caller-hangup"]))
    raw = (root / f"{name}.in.raw").read_bytes()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=12)))
    whole, rest = parse_environment(raw)
    p = EnvironmentParser()
    got = None
    prev = 0
    for cut in cuts + [len(raw)]:
        got = p.feed(raw[prev:cut]) or got
        prev = cut
    assert got == whole and p.rest == rest


def test_captured_environment_is_rebuilt_byte_exact(captures: Path) -> None:
    raw = _raw(captures, "agi-session")
    block = raw[: _env_block_end(raw)]
    env = asterisk_env(
        uniqueid="1795372412.1",
        callerid="13800138000",
        calleridname="Wang Wei",
        context="from-pstn",
        channel="Local/8005551234@from-pstn-00000000;2",
    )
    assert environment_block(env) == block
    parsed, _ = parse_environment(block)
    assert dict(parsed) == env


def test_arguments_come_after_threadid_in_order() -> None:
    env = asterisk_env(uniqueid="1.2", callerid="1", calleridname="x", args=("a b", "", "c"), script="ivr?lang=zh")
    keys = list(env)
    assert keys[-4:] == ["agi_threadid", "agi_arg_1", "agi_arg_2", "agi_arg_3"]
    parsed, rest = parse_environment(environment_block(env) + b"200 result=1\n")
    assert parsed.args == ("a b", "", "c") and parsed.strict and not parsed.suspicious
    assert parsed.network_script == "ivr" and rest == b"200 result=1\n"


def test_route_from_request_when_no_script_line() -> None:
    env = asterisk_env(uniqueid="1.3", callerid="1", calleridname="x", script="")
    assert "agi_network_script" not in env
    parsed, _ = parse_environment(environment_block(env))
    assert parsed.strict and parsed.network_script == ""
    env["agi_request"] = "agi://10.0.0.1/incoming/?did=123"
    parsed, _ = parse_environment(environment_block(env))
    assert parsed.network_script == "incoming"


def _block(env: dict[str, str]) -> bytes:
    return environment_block(env)


def _base(**kw: str) -> dict[str, str]:
    kw.setdefault("calleridname", "Mallory")
    return asterisk_env(uniqueid="1795372507.23", callerid="13500135000", **kw)


TAIL = (
    "agi_callingpres: 0\nagi_callingani2: 0\nagi_callington: 0\nagi_callingtns: 0\nagi_dnid: 911\n"
    "agi_rdnis: unknown\nagi_context: from-pstn\nagi_extension: 911\nagi_priority: 3\nagi_enhanced: 0.0\n"
    "agi_accountcode: \nagi_threadid: 1"
)


@pytest.mark.parametrize(
    "injected",
    [
        "x\nagi_extension: 911",  # the capture's trick
        "x\n" + TAIL,  # a whole forged tail, in order
        "x\n" + TAIL + "\nagi_arg_1: evil",  # ... plus a forged argument
        "x\nagi_callingpres: 0\nagi_callingani2: 0\nagi_callington: 0\nagi_callingtns: 0\nagi_dnid: 911",
        "x\nagi_channel: PJSIP/evil\nagi_uniqueid: 1\nagi_callerid: 110\nagi_calleridname: y",  # forged head
        "x\r\n\r\nagi_uniqueid: 2\n\r\nagi_context: evil\n\x01",
    ],
)
def test_keys_forged_inside_a_caller_name_are_ignored(injected: str) -> None:
    genuine = _base()
    env, _ = parse_environment(_block({**genuine, "agi_calleridname": injected}))
    assert env.strict and env.suspicious
    # The caller can only choose what its own name reads ("x", or a forged name line).
    assert env.calleridname == ("y" if "agi_calleridname: y" in injected else "x")
    for key, value in genuine.items():
        if key != "agi_calleridname":
            assert env[key] == value, key
    assert env.args == ()


def test_keys_forged_inside_an_argument_stay_in_the_arguments() -> None:
    genuine = _base(args=("a\nagi_extension: 911\nagi_arg_2: forged",))
    env, _ = parse_environment(_block(genuine))
    assert env.extension == "8005551234" and env.args[0] == "a"


def test_a_block_not_in_asterisk_layout_is_read_leniently() -> None:
    env, rest = parse_environment(b"agi_uniqueid: 9.9\ngarbage\nagi_extension: 100\nagi_extension: 200\n\nrest")
    assert not env.strict and env.suspicious
    assert env.uniqueid == "9.9" and env.extension == "100" and rest == b"rest"
    empty, rest = parse_environment(b"\nHANGUP\n")
    assert empty is not None and len(empty) == 0 and rest == b"HANGUP\n"


def test_an_empty_line_in_a_caller_name_cuts_the_block_and_is_flagged() -> None:
    env, rest = parse_environment(_block(_base(calleridname="x\n\nagi_extension: 911")))
    assert not env.strict and env.calleridname == "x"
    assert "agi_extension" not in env and rest.startswith(b"agi_extension: 911\n")


def test_non_utf8_is_replaced_not_fatal() -> None:
    raw = _block(_base()).replace(b"Mallory", b"Ma\xff\xfell\xc3ory\x00")
    env, _ = parse_environment(raw)
    assert env.calleridname == "Ma\ufffd\ufffdll\ufffdory\x00" and env.strict


def test_environment_size_limit() -> None:
    raw = _block(_base())
    assert parse_environment(raw, max_bytes=len(raw))[0] is not None
    with pytest.raises(EnvironmentTooLarge):
        parse_environment(raw, max_bytes=len(raw) - 1)
    p = EnvironmentParser(max_bytes=1000)
    p.feed(b"agi_network: yes\n")
    with pytest.raises(EnvironmentTooLarge):
        p.feed(b"agi_calleridname: " + b"A" * 2000)


# ---------------------------------------------------------------------------------------------
# replies


def _asterisk_replies(captures: Path, name: str) -> list[bytes]:
    """The asterisk>agi chunks after the environment block, as recorded."""
    chunks = [r.data for r in read_log(captures / f"{name}.log") if r.direction == "asterisk>agi"]
    raw = b"".join(chunks)
    end = _env_block_end(raw)
    out, pos = [], 0
    for c in chunks:
        if pos + len(c) > end:
            out.append(c[max(end - pos, 0) :])
        pos += len(c)
    return out


def _feed_all(chunks: list[bytes]) -> list[object]:
    p = AgiReplyParser()
    return [ev for c in chunks for ev in p.feed(c)]


def test_every_reply_shape_of_a_full_session(captures: Path) -> None:
    events = _feed_all(_asterisk_replies(captures, "agi-session"))
    short = [(e.code, e.result, e.data, e.endpos) for e in events]
    assert short == [
        (200, 1, "13800138000", None),  # GET VARIABLE
        (200, 1, "Wang Wei", None),  # GET FULL VARIABLE
        (200, 0, None, None),  # no such variable
        *[(200, 1, None, None)] * 7,  # SET VARIABLE x7
        (200, 1, "mobile", None),
        (200, 1, None, None),  # VERBOSE
        (200, 6, None, None),  # CHANNEL STATUS
        (200, 0, None, 6400),  # STREAM FILE hello
        (200, 0, None, None),  # EXEC Wait 1
        (200, -2, None, None),  # EXEC NoSuchApplication
        (510, None, None, None),
        (520, None, None, None),  # one reply from two TCP chunks
    ]
    assert events[-2].text == "510 Invalid or unknown command"
    assert events[-1].text == (
        "520-Invalid command syntax.  Proper usage follows:\n"
        "Sets a variable to the current channel.\n520 End of proper usage."
    )
    assert events[2].ok and not events[-2].ok and events[-3].result == -2


def test_hangup_line_and_dead_channel_replies(captures: Path) -> None:
    events = _feed_all(_asterisk_replies(captures, "agi-caller-hangup"))
    assert isinstance(events[0], AgiHangup)
    assert [(e.code, e.result, e.data) for e in events[1:]] == [
        (200, 1, None),
        (200, 1, "075588889999"),
        (511, None, None),
        (200, 0, None),
    ]
    assert events[3].text == "511 Command Not Permitted on a dead channel or intercept routine"


def test_missing_sound_is_a_failure_reply(captures: Path) -> None:
    events = _feed_all(_asterisk_replies(captures, "agi-session-ringnoanswer"))
    failed = [e for e in events if isinstance(e, AgiReply) and e.result == -1]
    assert [(e.code, e.result, e.endpos, e.ok) for e in failed] == [(200, -1, 0, False)]


@pytest.mark.parametrize("name", ["agi-session", "agi-caller-hangup", "agi-session-ringnoanswer"])
def test_replies_split_at_every_byte(captures: Path, name: str) -> None:
    raw = b"".join(_asterisk_replies(captures, name))
    whole = _feed_all([raw])
    for cut in range(len(raw) + 1):
        assert _feed_all([raw[:cut], raw[cut:]]) == whole


def test_reply_parser_odd_lines() -> None:
    events = _feed_all([b"200 result=1 (a) b (c)) endpos=12\n", b"garbage\n", b"HANGUP\n", b"200 result=x\n"])
    assert events[0] == AgiReply(200, 1, "a) b (c)", 12, "200 result=1 (a) b (c)) endpos=12")
    assert events[1] == AgiUnexpectedLine("garbage") and isinstance(events[2], AgiHangup)
    assert events[3].code == 200 and events[3].result is None


@pytest.mark.parametrize("line, endpos", [
    (b"200 result=1 (digit) digit=5 endpos=3200\n", 3200),  # SPEECH RECOGNIZE, a DTMF digit
    (b"200 result=1 (speech) endpos=1600 results=1 score0=900 text0=yes grammar0=g\n", 1600),
    (b"200 result=53 endpos=800\n", 800),
    (b"200 result=0 (timeout) endpos=x\n", None),
])
def test_endpos_is_read_wherever_it_comes_among_the_attributes(line: bytes, endpos: int | None) -> None:
    [reply] = _feed_all([line])
    assert (reply.code, reply.endpos) == (200, endpos)


# ---------------------------------------------------------------------------------------------
# commands


def _cmd(captures: Path, name: str) -> list[bytes]:
    return [r.data for r in read_log(captures / f"{name}.log") if r.direction == "agi>asterisk"]


def test_commands_are_byte_exact_with_the_capture(captures: Path) -> None:
    sent = _cmd(captures, "agi-session")
    assert set_variable("CTI_QUEUE", "mobile") in sent
    assert set_variable("CTI_CUSTOMER_NAME_ZH", "王伟") in sent
    assert verbose("cti: caller routed", 1) in sent
    assert command("GET", "VARIABLE", "CALLERID(num)") in sent
    assert command("STREAM", "FILE", "hello", "") in sent
    assert command("EXEC", "Wait", "1") in sent


@pytest.mark.parametrize(
    "line, args",
    [
        (b'SET VARIABLE CTI_QUEUE "mobile"', [b"SET", b"VARIABLE", b"CTI_QUEUE", b"mobile"]),
        (b'STREAM FILE hello ""', [b"STREAM", b"FILE", b"hello", b""]),
        (b'a"b c"d  e', [b"ab cd", b"e"]),
        (b'"a \\" \\\\ \\x"', [b'a " \\ x']),
        (b"a\\ b\tc", [b"a b", b"c"]),
        (b'"unterminated\tvalue', [b"unterminated\tvalue"]),
        (b"x\0y z", [b"x"]),
        (b"  ", []),
    ],
)
def test_parse_command_args_is_asterisks_parse_args(line: bytes, args: list[bytes]) -> None:
    assert parse_command_args(line) == args


def test_parse_command_args_truncates_at_max_args() -> None:
    assert len(parse_command_args(b" ".join([b"w"] * 200))) == 127


@settings(max_examples=400, deadline=None)
@given(value=st.text(), name=st.from_regex(r"[A-Za-z_][A-Za-z0-9_()]{0,20}", fullmatch=True))
def test_set_variable_is_one_line_whose_value_round_trips(value: str, name: str) -> None:
    line = set_variable(name, value)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert b"\r" not in line and b"\0" not in line and len(line) < 8191
    args = parse_command_args(line[:-1])
    assert args == [b"SET", b"VARIABLE", name.encode(), sanitize_value(value).encode("utf-8")]


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=300))
def test_undecodable_bytes_kept_by_surrogateescape_are_safe(raw: bytes) -> None:
    value = raw.decode("utf-8", "surrogateescape")
    line = set_variable("V", value)
    assert line.count(b"\n") == 1 and b"\0" not in line and b"\r" not in line
    line.decode("utf-8")  # valid UTF-8 on the wire
    assert parse_command_args(line[:-1])[3] == sanitize_value(value).encode()


def test_sanitize_value_rules() -> None:
    assert sanitize_value("a\r\nb\0c") == "a  b c"
    assert sanitize_value("x\ud800y") == "x\ufffdy"
    assert sanitize_value("tab\tkept") == "tab\tkept"
    long = sanitize_value('"' * 10_000)
    assert len(long) == MAX_VALUE_BYTES // 2
    wide = sanitize_value("王" * 10_000)
    assert len(wide.encode()) <= MAX_VALUE_BYTES and len(wide) == MAX_VALUE_BYTES // 3
    assert quote_arg('a"\\') == b'"a\\"\\\\"'


@pytest.mark.parametrize("name", ["", "1X", "A B", "A\nB", 'A"', "A;B", "Ä", "A" * 81, "X=1"])
def test_invalid_variable_names_are_refused(name: str) -> None:
    assert not is_valid_variable_name(name)
    with pytest.raises(ValueError):
        set_variable(name, "v")


def test_function_style_names_are_allowed() -> None:
    assert set_variable("CDR(userfield)", "x") == b'SET VARIABLE CDR(userfield) "x"\n'


def test_asterisk_reader_cuts_long_lines_and_glues_after_nul() -> None:
    r = AsteriskCommandReader()
    long = b"VERBOSE " + b"a" * 9000 + b"\n"
    got = r.feed(long)
    assert [len(x) for x in got] == [8191, len(long) - 8191 - 1]
    assert r.feed(b"SET VARIABLE A \"x\0\nNOOP\n") == [b'SET VARIABLE A "xNOOP']
    assert r.feed(b"VERBOSE") == [] and r.feed_eof() == [b"VERBOSE"]


_KEY_LINES = st.sampled_from(
    [
        "agi_network: yes", "agi_network_script: evil", "agi_request: agi://evil/x", "agi_channel: PJSIP/evil",
        "agi_language: xx", "agi_type: Evil", "agi_uniqueid: 666.6", "agi_version: 0", "agi_callerid: 110",
        "agi_calleridname: forged", "agi_callingpres: 9", "agi_callingani2: 9", "agi_callington: 9",
        "agi_callingtns: 9", "agi_dnid: 911", "agi_rdnis: 911", "agi_context: evil", "agi_extension: 911",
        "agi_priority: 99", "agi_enhanced: 1.0", "agi_accountcode: evil", "agi_threadid: 1", "agi_arg_1: evil",
        "agi_arg_2: evil", "SET VARIABLE CTI_QUEUE \"complaints\"", "\r", "Event: Fake\r", "",
    ]
)
_INJECTION = st.lists(st.one_of(_KEY_LINES, st.text(max_size=10)), min_size=1, max_size=30).map("\n".join).filter(
    lambda v: "\n\n" not in v and not v.endswith("\n") and not v.startswith("\n")
)


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(
        ["agi_network_script", "agi_request", "agi_callerid", "agi_calleridname", "agi_dnid", "agi_rdnis", "agi_arg_1"]
    ),
    injected=_INJECTION,
)
def test_one_caller_controlled_value_cannot_forge_any_other_key(field: str, injected: str) -> None:
    genuine = _base(args=("menu",))
    env, rest = parse_environment(_block({**genuine, field: injected}))
    assert rest == b"" and env.strict
    for key, value in genuine.items():
        if key != field:
            assert env[key] == value, key
    first = injected.split("\n", 1)[0]
    first = first[:-1] if first.endswith("\r") else first
    forged = {line.split(": ", 1)[1].rstrip("\r") for line in injected.split("\n") if line.startswith(field + ": ")}
    assert env[field] in {first} | forged
    extra_args = {k for k in env if k.startswith("agi_arg_")} - {"agi_arg_1"}
    assert field == "agi_arg_1" or not extra_args
