"""Injection fuzz: whatever text a handler returns, Asterisk receives exactly one SET VARIABLE per
variable, and stores the sanitized value (checked with a port of Asterisk's own parser)."""

from __future__ import annotations

import asyncio
from typing import Mapping

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti.agi.peer import asterisk_env, run_agi_call
from cti.agi.protocol import AgiEnvironment, sanitize_value
from cti.agi.server import AgiServer

# Text that stresses the command line: separators, quotes, escapes, NUL, non-BMP, lone surrogates,
# and undecodable bytes carried by surrogateescape.
_nasty = st.sampled_from(["\n", "\r", "\r\n", "\0", '"', "\\", '\\"', " ", "\t", "\n\n", "SET VARIABLE X 1\n", "HANGUP\n"])
_surrogate = st.integers(0xD800, 0xDFFF).map(chr)
_escaped_bytes = st.binary(min_size=1, max_size=20).map(lambda b: b.decode("utf-8", "surrogateescape"))
_pieces = st.one_of(st.text(), _nasty, _surrogate, _escaped_bytes)
_values = st.one_of(
    st.lists(_pieces, max_size=12).map("".join),
    st.text(min_size=5000, max_size=12000),  # longer than one Asterisk command buffer
    st.integers(1000, 9000).map(lambda n: "\\" * n),
    st.integers(1000, 9000).map(lambda n: "王\n" * n),
)
_names = st.lists(st.from_regex(r"CTI_[A-Z0-9_]{1,12}", fullmatch=True), min_size=1, max_size=4, unique=True)


def test_handler_values_cannot_inject_commands() -> None:
    loop = asyncio.new_event_loop()
    pending: dict[str, Mapping[str, str]] = {}

    async def incoming(env: AgiEnvironment) -> Mapping[str, str]:
        return pending[env.uniqueid]

    server = AgiServer({"incoming": incoming}, lambda env: {"CTI_QUEUE": "fallback"}, deadline_s=5, read_timeout_s=5)
    loop.run_until_complete(server.start("127.0.0.1", 0))
    counter = iter(range(10**9))

    @settings(
        max_examples=400,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(names=_names, data=st.data())
    def one_call(names: list[str], data: st.DataObject) -> None:
        variables = {n: data.draw(_values) for n in names}
        uid = f"1795372412.{next(counter)}"
        pending[uid] = variables
        name = data.draw(_values)[:200].encode("utf-8", "surrogatepass").decode("utf-8", "surrogateescape")
        env = asterisk_env(uniqueid=uid, callerid="13800138000", calleridname=name)  # raw bytes, like Asterisk
        out = loop.run_until_complete(run_agi_call("127.0.0.1", server.port, env, timeout=10))
        del pending[uid]
        assert out.status == "SUCCESS" and out.error is None
        assert len(out.commands) == len(variables)  # one command per variable, nothing else
        assert all(r == "200 result=1\n" for r in out.replies)
        assert out.variables == {n: sanitize_value(v) for n, v in variables.items()}

    try:
        one_call()
    finally:
        loop.run_until_complete(server.close())
        loop.close()
