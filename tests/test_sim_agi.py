"""The simulated PBX as a FastAGI client: environment like the capture, dialplan logic around AGI."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path


from cti.sim.config import SimConfig
from cti.sim.pbx import SimPbx
from cti.sim.testing import RawAmiClient, ScriptedAgiServer, frame_name


def sim_config(agi_port: int, **kw) -> SimConfig:
    return SimConfig(**{"ami_port": 0, "agi_port": agi_port, "speed": 50, "seed": 5, **kw})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_environment_block_is_byte_exact_with_the_capture(captures: Path) -> None:
    """Same call as agi-session: the block differs only in the per-call values."""
    agi = await ScriptedAgiServer(lambda env: {"CTI_QUEUE": "mobile"}).start()
    config = sim_config(agi.port, trunk="Local/8005551234@from-pstn", context="from-pstn")
    try:
        async with SimPbx(config) as pbx:
            call = pbx.place_call("13800138000", "Wang Wei", patience=600, talk_time=1)
            await call.wait("finished", timeout=30)
    finally:
        await agi.stop()
    captured = (captures / "agi-session.in.raw").read_bytes()
    captured_env = captured[: captured.index(b"\n\n") + 2]
    mine = agi.raw[0]
    env = agi.envs[0]
    expected = (captured_env
                .replace(b"Local/8005551234@from-pstn-00000000;2", env["agi_channel"].encode())
                .replace(b"1795372412.1", env["agi_uniqueid"].encode())
                .replace(b"139897454663360", env["agi_threadid"].encode())
                .replace(b"agi://127.0.0.1:4573/incoming", f"agi://127.0.0.1:{agi.port}/incoming".encode()))
    assert mine == expected
    assert env["agi_channel"] == call.channel.name and env["agi_uniqueid"] == call.uniqueid


async def test_trunk_call_carries_the_dialed_number_and_pjsip_type() -> None:
    agi = await ScriptedAgiServer(lambda env: {"CTI_QUEUE": "mobile"}).start()
    try:
        async with SimPbx(sim_config(agi.port)) as pbx:
            call = pbx.place_call("13800138000", "Wang Wei", dnid="4008001234", patience=600, talk_time=1)
            await call.wait("finished", timeout=30)
    finally:
        await agi.stop()
    env = agi.envs[0]
    assert env["agi_type"] == "PJSIP" and env["agi_channel"].startswith("PJSIP/trunk-")
    assert (env["agi_dnid"], env["agi_extension"], env["agi_context"]) == ("4008001234", "4008001234", "cti-inbound")
    assert env["agi_network_script"] == "incoming" and env["agi_priority"] == "3"


async def test_unreachable_cti_falls_back_to_the_default_queue() -> None:
    async with SimPbx(sim_config(free_port())) as pbx:
        c = await RawAmiClient("127.0.0.1", pbx.ami_port).connect()
        await c.login()
        call = pbx.place_call("02161234567", "Zhang Hua", patience=600, talk_time=1)
        await call.wait("finished", timeout=30)
        frames = await c.wait_for(lambda fs: any(frame_name(f) == "AgentComplete" for f in fs))
        await c.close()
    assert (call.agi_status, call.queue, call.outcome) == ("FAILURE", "appliances", "answered")
    varsets = [(dict(f)["Variable"], dict(f)["Value"]) for f in frames if frame_name(f) == "VarSet"]
    assert ("AGISTATUS", "FAILURE") in varsets and ("CTI_QUEUE", "appliances") in varsets


async def test_silent_cti_keeps_the_caller_until_they_hang_up() -> None:
    """No AGI read timeout in Asterisk: the caller waits, then hangs up; HANGUP is sent; no queue."""
    received: list[bytes] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(65536))
        received.append(await reader.read(65536))
        received.append(await reader.read(65536))
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with SimPbx(sim_config(port)) as pbx:
            call = pbx.place_call("075588889999", "Chen Jing", patience=4)
            await call.wait("finished", timeout=30)
    finally:
        server.close()
    assert (call.agi_status, call.outcome, call.queue) == ("HANGUP", "hangup", None)
    assert b"HANGUP\n" in b"".join(received)


async def test_ivr_digit_goes_back_to_cti_and_routes_again() -> None:
    def route(env: dict[str, str]) -> dict[str, str]:
        if env["agi_network_script"] == "incoming":
            return {"CTI_ACTION": "ivr", "CTI_QUEUE": "appliances", "CTI_GREETING": "cti/menu"}
        return {"CTI_QUEUE": {"1": "mobile", "2": "complaints"}[env["agi_arg_1"]], "CTI_PRIORITY": "3"}

    agi = await ScriptedAgiServer(route).start()
    try:
        async with SimPbx(sim_config(agi.port)) as pbx:
            call = pbx.place_call("13800138000", "Wang Wei", ivr_digit="2", patience=600, talk_time=1)
            await call.wait("finished", timeout=30)
    finally:
        await agi.stop()
    assert [e["agi_network_script"] for e in agi.envs] == ["incoming", "ivr"]
    assert agi.envs[1]["agi_arg_1"] == "2" and agi.envs[1]["agi_request"].endswith("/ivr")
    assert (call.queue, call.priority, call.outcome) == ("complaints", 3, "answered")


async def test_afterhours_plays_a_message_and_hangs_up() -> None:
    agi = await ScriptedAgiServer(lambda env: {"CTI_ACTION": "afterhours", "CTI_QUEUE": "appliances",
                                               "CTI_GREETING": "cti/closed"}).start()
    try:
        async with SimPbx(sim_config(agi.port)) as pbx:
            call = pbx.place_call("13800138000", "Wang Wei", patience=600)
            await call.wait("finished", timeout=30)
    finally:
        await agi.stop()
    assert call.outcome == "afterhours" and not call.reached("queued")


async def test_priority_from_cti_puts_the_caller_ahead() -> None:
    def route(env: dict[str, str]) -> dict[str, str]:
        prio = "10" if env["agi_callerid"] == "13700003333" else "0"
        return {"CTI_QUEUE": "complaints", "CTI_PRIORITY": prio, "CTI_GREETING": "hello"}

    agi = await ScriptedAgiServer(route).start()
    try:
        async with SimPbx(sim_config(agi.port)) as pbx:
            c = await RawAmiClient("127.0.0.1", pbx.ami_port).connect()
            await c.login()
            for iface in ("PJSIP/3001", "PJSIP/3002"):
                await c.response(c.send("QueuePause", Queue="complaints", Interface=iface, Paused="true"))
            low = pbx.place_call("13700002222", "Sun Yue", patience=600, talk_time=2)
            await low.wait("queued", timeout=30)
            high = pbx.place_call("13700003333", "Ma Lin", patience=600, talk_time=2)
            await high.wait("queued", timeout=30)
            assert (low.position, high.position) == (1, 1)
            await c.response(c.send("QueuePause", Queue="complaints", Interface="PJSIP/3001", Paused="false"))
            await high.wait("answered", timeout=30)
            assert not low.reached("answered")
            await low.wait("finished", timeout=30)
            await c.close()
    finally:
        await agi.stop()
    assert low.agent == high.agent == "PJSIP/3001"


async def test_a_cti_that_never_answers_the_connect_costs_two_seconds_then_falls_back() -> None:
    """Like agi-server-blackhole: SYNs dropped (listen backlog full), MAX_AGI_CONNECT 2 s, fallback."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):  # fill the accept queue; later SYNs get no answer
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    await asyncio.sleep(0.05)
    try:
        async with SimPbx(sim_config(port, speed=10, agi_connect_floor=0.1)) as pbx:
            start = pbx.clock.now()
            call = pbx.place_call("02087654321", "Zhou Min", patience=600, talk_time=1)
            await call.wait("agi_done", timeout=30)
            waited = pbx.clock.now() - start - pbx.config.answer_seconds
            await call.wait("finished", timeout=30)
    finally:
        for s in fillers:
            s.close()
        listener.close()
    assert (call.agi_status, call.queue) == ("FAILURE", "appliances")
    assert waited >= 1.9  # simulated seconds spent on the connect attempt


async def test_the_sim_talks_to_ctis_own_fastagi_server_even_with_a_hostile_caller_name() -> None:
    """Interop with cti.agi.server: the raw (unescaped) environment of a hostile caller still routes
    on the real caller number, and the variables cti sets reach the dialplan."""
    from cti.agi.server import AgiServer

    seen: list[tuple[str, str]] = []

    async def incoming(env):
        seen.append((env.callerid, env.extension))
        return {"CTI_QUEUE": "complaints" if env.callerid == "13500135000" else "mobile", "CTI_PRIORITY": "7",
                "CTI_GREETING": "cti/hello", "CTI_LANG": "en", "CTI_CUSTOMER_ID": "", "CTI_ACTION": "queue"}

    server = AgiServer({"incoming": incoming}, lambda env: {"CTI_QUEUE": "appliances"},
                       deadline_s=1.0, read_timeout_s=2.0)
    await server.start("127.0.0.1", 0)
    hostile = 'Evil "Bob"\r\nagi_extension: 911\nSET VARIABLE CTI_QUEUE "mobile"\n\x01\tend'
    try:
        async with SimPbx(sim_config(server.port)) as pbx:
            call = pbx.place_call("13500135000", hostile, patience=600, talk_time=1)
            await call.wait("finished", timeout=30)
    finally:
        await server.close()
    assert seen == [("13500135000", "8005551234")]
    assert (call.agi_status, call.queue, call.priority) == ("SUCCESS", "complaints", 7)
    assert call.variables["CTI_GREETING"] == "cti/hello"
