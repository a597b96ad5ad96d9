"""Screen-pops over real websockets: content, the one-agent rule, follow-ups, reconnect replay, slow consumers."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from datetime import date, timedelta

import aiohttp
import pytest
from sqlalchemy import select

from cti.db.tables import calls
from test_web_support import Web, next_of, until_pong, web  # noqa: F401  (fixture)


async def test_pop_for_a_known_customer_has_everything_the_agent_needs(web: Web):
    ws = await web.ws(await web.login("alice"))
    web.ring("PJSIP/1001", "1700000000.1", web.customer_id, ivr_choice="1", queued_at=time.time() - 42)
    pop = await next_of(ws, "screen_pop")
    call, cust = pop["call"], pop["customer"]
    assert pop["status"] == "ringing" and pop["unknown_caller"] is False
    assert call["uniqueid"] == "1700000000.1" and call["queue"] == "appliances" and call["priority"] == 5
    assert call["dialed"] == "4008001234" and call["ivr_choice"] == "1"
    assert 41 <= call["wait_s"] <= 60
    assert cust["name"] == "王伟先生" and cust["vip"] is True and cust["language"] == "zh"
    assert cust["phones"] == ["+8613800138000"]
    models = {p["model"]: p["purchased_on"] for p in cust["products"]}
    assert models["美的微波炉 M3"] == (date.today() - timedelta(days=20)).isoformat()
    [complaint] = pop["open_complaints"]
    assert complaint["description"] == "微波炉不加热" and complaint["sla_deadline"] and complaint["overdue"] is False
    [last] = pop["last_calls"]
    assert last["notes"] == "客户说微波炉不加热，已约上门" and last["disposition"] == "follow_up"
    assert pop["suggestion"]["id"] == "rice-cooker-for-new-microwave" and "电饭煲" in pop["suggestion"]["zh"]
    await ws.close()


async def test_unknown_caller_pop_has_the_number_ready_for_a_new_customer(web: Web):
    ws = await web.ws(await web.login("alice"))
    web.ring("PJSIP/1001", "1700000000.2", None, caller_e164="+8613912345678", caller_number="13912345678")
    pop = await next_of(ws, "screen_pop")
    assert pop["unknown_caller"] is True and pop["customer"] is None
    assert pop["new_customer"] == {"phones": "+8613912345678", "language": "zh"}
    await ws.close()


async def test_only_the_rung_agent_gets_the_pop(web: Web):
    alice = await web.ws(await web.login("alice"))
    bob = await web.ws(await web.login("bob"))
    sue = await web.ws(await web.login("sue"))
    assert (await sue.receive_json(timeout=5))["type"] == "agents"
    web.ring("PJSIP/1001", "1700000000.3", web.customer_id)
    assert (await next_of(alice, "screen_pop"))["customer"]["id"] == web.customer_id
    web.daemon.bus.publish("agent.state", {"server": "default", "interface": "PJSIP/1001", "name": "alice",
                                           "state": "ringing", "at": time.time()})
    # bob and the supervisor saw no pop: everything before their pong
    assert all(m["type"] != "screen_pop" for m in await until_pong(bob))
    sup_msgs = await until_pong(sue)
    assert [m["type"] for m in sup_msgs] == ["agent_state"] and sup_msgs[0]["interface"] == "PJSIP/1001"
    assert "王" not in json.dumps(sup_msgs, ensure_ascii=False)
    # alice sees her own state; bob does not see alice's
    assert (await next_of(alice, "agent_state"))["state"] == "ringing"
    assert await until_pong(bob) == []
    for ws in (alice, bob, sue):
        await ws.close()


async def test_follow_ups_update_the_pop(web: Web):
    ws = await web.ws(await web.login("alice"))
    web.ring("PJSIP/1001", "u.4", web.customer_id)
    await next_of(ws, "screen_pop")
    web.follow("call.answered", "PJSIP/1001", "u.4", queue="appliances")
    assert (await next_of(ws, "call_update"))["status"] == "connected"
    web.follow("call.transferred", "PJSIP/1001", "u.4", kind="blind")
    upd = await next_of(ws, "call_update")
    assert upd["status"] == "transferred" and upd["reason"] == "blind"
    web.ring("PJSIP/1001", "u.5", None)
    await next_of(ws, "screen_pop")
    web.follow("call.ended", None, "u.5")
    assert (await next_of(ws, "call_update"))["status"] == "ended"
    web.ring("PJSIP/1001", "u.6", None)
    await next_of(ws, "screen_pop")
    web.follow("call.ring_stopped", "PJSIP/1001", "u.6", reason="noanswer")
    assert (await next_of(ws, "call_update"))["status"] == "missed"
    await ws.close()


async def test_a_ring_on_another_agents_phone_does_not_touch_my_pop(web: Web):
    ws = await web.ws(await web.login("alice"))
    web.ring("PJSIP/1001", "u.7", None)
    await next_of(ws, "screen_pop")
    web.follow("call.ring_stopped", "PJSIP/1002", "u.7", reason="answered_elsewhere")  # bob's leg of a ringall
    web.follow("call.answered", "PJSIP/1001", "u.7")
    assert (await next_of(ws, "call_update"))["status"] == "connected"
    await ws.close()


async def test_reconnect_while_ringing_or_connected_replays_the_pop(web: Web):
    token = await web.login("alice")
    ws = await web.ws(token)
    web.ring("PJSIP/1001", "u.8", web.customer_id)
    await next_of(ws, "screen_pop")
    await ws.close()
    # ringing while disconnected: the pop is there at once on reconnect
    ws = await web.ws(token)
    pop = await next_of(ws, "screen_pop")
    assert pop["status"] == "ringing" and pop["call"]["uniqueid"] == "u.8"
    await ws.close()
    web.follow("call.answered", "PJSIP/1001", "u.8")
    ws = await web.ws(token)
    pop = await next_of(ws, "screen_pop")
    assert pop["status"] == "connected" and pop["customer"]["name"] == "王伟先生"
    web.follow("call.completed", "PJSIP/1001", "u.8", reason="caller")
    assert (await next_of(ws, "call_update"))["status"] == "ended"
    await ws.close()
    ws = await web.ws(token)
    assert all(m["type"] != "screen_pop" for m in await until_pong(ws))  # the call is over: nothing to replay
    await ws.close()


async def test_a_second_connection_of_the_same_agent_replaces_the_first(web: Web):
    token = await web.login("alice")
    first = await web.ws(token)
    second = await web.ws(token)
    msg = await first.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4000
    web.ring("PJSIP/1001", "u.9", None)
    assert (await next_of(second, "screen_pop"))["call"]["uniqueid"] == "u.9"
    await second.close()


async def _stuck_websocket(web: Web, token: str) -> socket.socket:
    """A websocket client that completes the handshake and then never reads (tiny receive buffer)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", web.daemon.web.port))
    await loop.sock_sendall(sock, (
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {token}\r\n\r\n").encode())
    head = await asyncio.wait_for(loop.sock_recv(sock, 1024), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_a_stuck_client_is_cut_off_and_never_delays_the_others(web: Web):
    hub = web.daemon.web.hub
    hub.max_queue = 16
    sock = await _stuck_websocket(web, await web.login("sue"))
    alice = await web.ws(await web.login("alice"))
    stuck = hub.by_agent_id[web.ids["sue"]]
    pad = "x" * 4000
    i = 0

    def flood(n: int) -> None:
        nonlocal i
        for _ in range(n):
            i += 1
            web.daemon.bus.publish("agent.state", {"server": "default", "interface": f"PJSIP/9{i:05d}",
                                                   "state": "ready", "pad": pad, "at": time.time()})

    # fill the socket buffers until the stuck client's writer is blocked with frames queued
    for _ in range(500):
        flood(8)
        await asyncio.sleep(0.01)
        if stuck.pending > 0 or stuck.closed:
            break
    assert stuck.pending > 0 and not stuck.closed, (stuck.pending, stuck.close_reason)
    # alice's pop is not held up by the stuck supervisor
    web.ring("PJSIP/1001", "u.10", web.customer_id)
    assert (await next_of(alice, "screen_pop", timeout=5))["call"]["uniqueid"] == "u.10"
    # more events: the stuck client overflows and is dropped; alice is still served
    for _ in range(100):
        flood(8)
        await asyncio.sleep(0.01)
        if stuck.closed:
            break
    assert stuck.closed and stuck.close_reason == "overflow"
    await asyncio.sleep(0.1)
    assert web.ids["sue"] not in hub.by_agent_id and hub.dropped_clients == 1
    web.ring("PJSIP/1001", "u.11", None)
    assert (await next_of(alice, "screen_pop"))["call"]["uniqueid"] == "u.11"
    await alice.close()
    sock.close()


def _frames(data: bytes) -> list[str]:
    """Text frames from server bytes (unmasked), complete ones only."""
    out, i = [], 0
    while i + 2 <= len(data):
        n, head = data[i + 1] & 0x7F, 2
        if n == 126:
            if i + 4 > len(data):
                break
            n, head = int.from_bytes(data[i + 2:i + 4], "big"), 4
        elif n == 127:
            if i + 10 > len(data):
                break
            n, head = int.from_bytes(data[i + 2:i + 10], "big"), 10
        if i + head + n > len(data):
            break
        if data[i] & 0x0F == 1:
            out.append(data[i + head:i + head + n].decode())
        i += head + n
    return out


async def test_a_slow_but_live_client_catches_up_in_order(web: Web):
    hub = web.daemon.web.hub
    hub.max_queue = 10_000
    sock = await _stuck_websocket(web, await web.login("sue"))
    client = hub.by_agent_id[web.ids["sue"]]
    pad = "y" * 4000
    sent = 0
    for _ in range(300):  # until its writer waits on back-pressure with frames queued behind
        for _ in range(8):
            sent += 1
            web.daemon.bus.publish("agent.state", {"interface": f"PJSIP/{sent}", "seq": sent, "pad": pad})
        await asyncio.sleep(0.01)
        if client.pending > 0:
            break
    assert client.pending > 0 and not client.closed
    loop = asyncio.get_running_loop()
    data = b""
    seqs: list[int] = []

    async def read_all() -> None:
        nonlocal data, seqs
        while len(seqs) < sent:
            data += await loop.sock_recv(sock, 1 << 16)
            seqs = [json.loads(f)["seq"] for f in _frames(data) if '"seq"' in f]

    await asyncio.wait_for(read_all(), 20)
    assert seqs == list(range(1, sent + 1)) and not client.closed and client.pending == 0
    sock.close()


async def test_websocket_heartbeats_keep_each_connections_own_phase(web: Web):
    """aiohttp rounds long timers up to whole seconds by default: every console connected within a second
    would ping at the same instant (a burst the pops wait behind). The hub's heartbeats are not rounded."""
    from cti.web.websocket import HEARTBEAT_S

    token = await web.login("alice")
    ws = await web.ws(token)
    hub = web.daemon.web.hub
    server_ws = hub.by_agent_id[web.ids["alice"]].ws
    assert server_ws._heartbeat == HEARTBEAT_S
    for _ in range(1000):  # the timer is (re)armed once the handshake's data has been read
        if server_ws._heartbeat_when:
            break
        await asyncio.sleep(0.01)
    assert server_ws._heartbeat_when % 1.0 != 0.0
    await ws.close()
