"""A FastAGI call is labelled with the Asterisk it came from (several AMI endpoints)."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from cti.agi.origin import AGI_PEER, AgiOrigins
from cti.agi.peer import asterisk_env, run_agi_call
from cti.agi.server import AgiServer


def test_peer_addresses_map_to_their_endpoint() -> None:
    o = AgiOrigins("pbx-a", {"10.0.0.5": {"pbx-a"}, "10.0.0.6": {"pbx-b"}, "::1": {"pbx-c"}})
    assert o.server_for("10.0.0.6") == "pbx-b"
    assert o.server_for("::ffff:10.0.0.6") == "pbx-b"  # IPv4-mapped IPv6 peer
    assert o.server_for("10.0.0.5") == "pbx-a"
    assert o.server_for("::1") == "pbx-c"


def test_unknown_or_ambiguous_peers_get_the_default_with_one_warning() -> None:
    o = AgiOrigins("pbx-a", {"10.0.0.5": {"pbx-a"}, "127.0.0.1": {"pbx-b", "pbx-c"}})
    with capture_logs() as logs:
        assert o.server_for("192.0.2.1") == "pbx-a"
        assert o.server_for("192.0.2.1") == "pbx-a"
        assert o.server_for("127.0.0.1") == "pbx-a"
        assert o.server_for(None) == "pbx-a"
    events = [e["event"] for e in logs]
    assert events.count("agi.origin_unknown") == 2  # 192.0.2.1 once, None once
    assert events.count("agi.origin_ambiguous") == 1


async def test_hosts_are_resolved_once_at_start() -> None:
    o = await AgiOrigins.resolve([("pbx-a", "127.0.0.1"), ("pbx-b", "localhost"), ("pbx-x", "no-such-host.invalid")])
    assert o.default == "pbx-a"
    # localhost resolves to 127.0.0.1 (and maybe ::1): 127.0.0.1 names two servers -> ambiguous -> default
    assert o.server_for("127.0.0.1") == "pbx-a"
    o2 = await AgiOrigins.resolve([("pbx-a", "127.0.0.2"), ("pbx-b", "127.0.0.1")])
    assert o2.server_for("127.0.0.1") == "pbx-b"


async def test_the_handler_and_the_decision_callback_see_the_calls_peer() -> None:
    seen: list[tuple[str, str | None]] = []

    async def incoming(env):  # noqa: ANN001
        seen.append(("handler", AGI_PEER.get()))
        return {"CTI_QUEUE": "mobile"}

    async def slow(env):  # noqa: ANN001 - waits, so it goes on in a task
        await asyncio.sleep(0.01)
        seen.append(("slow", AGI_PEER.get()))
        return {"CTI_QUEUE": "mobile"}

    def on_decision(env, variables, elapsed, outcome) -> None:  # noqa: ANN001
        seen.append(("decision", AGI_PEER.get()))

    server = AgiServer({"incoming": incoming, "slow": slow}, lambda e: {}, deadline_s=2, read_timeout_s=2,
                       on_decision=on_decision)
    await server.start("127.0.0.1", 0)
    try:
        for route in ("incoming", "slow"):
            await run_agi_call("127.0.0.1", server.port, asterisk_env(uniqueid="1.1", callerid="13800138000", calleridname="Wang", script=route, port=server.port))
    finally:
        await server.close()
    assert seen == [("handler", "127.0.0.1"), ("decision", "127.0.0.1"), ("slow", "127.0.0.1"), ("decision", "127.0.0.1")]


async def test_the_daemon_labels_each_decision_with_its_asterisk(tmp_path) -> None:
    from cti.app import Daemon
    from cti.config import load_settings
    from cti.routing.inbound import Decision

    cfg = tmp_path / "cti.toml"
    cfg.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/cti.db"\n'
        '[[ami.endpoints]]\nname = "beijing"\nhost = "127.0.0.2"\n'
        '[[ami.endpoints]]\nname = "shanghai"\nhost = "127.0.0.3"\n',
        encoding="utf-8",
    )
    daemon = Daemon(load_settings(cfg, env={}))
    try:
        sub = daemon.bus.subscribe("agi.decision", maxsize=10)
        daemon.origins = await AgiOrigins.resolve([("beijing", "127.0.0.2"), ("shanghai", "127.0.0.3")])
        d = Decision("1795372412.7", "13800138000", "+8613800138000", 1, "4008001234", "mobile", 0, "queue",
                     "product", "zh", None, 0.0)
        for i, peer in enumerate(("127.0.0.3", "127.0.0.2", "203.0.113.9")):
            token = AGI_PEER.set(peer)
            try:
                d.uniqueid = f"1795372412.{7 + i}"  # one call each: a second decision of a call is not published
                daemon._publish_decision(d)
            finally:
                AGI_PEER.reset(token)
        got = [(await asyncio.wait_for(sub.__anext__(), 5)).payload["server"] for _ in range(3)]
        assert got == ["shanghai", "beijing", "beijing"]  # an unknown peer: the first endpoint
    finally:
        await daemon.bus.close()
        await daemon.engine.dispose()
