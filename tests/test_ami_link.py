"""The AMI link against a real TCP peer on loopback: a scripted AMI server speaking the
bytes of the captures (banner, MD5 challenge login, FullyBooted, QueueStatus and
CoreShowChannels lists), which drops the connection mid-frame and comes back changed."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from cti.ami import AmiActionError, AmiAuthError, AmiDisconnectedError, AmiService, AmiVersionError
from cti.bus import InMemoryBus
from cti.config import AmiConfig
from cti.db.engine import sessionmaker
from cti.db.tables import calls

SECRET = "s3cret-cti"
CHALLENGE = "41400581"


def _frames(raw: bytes) -> list[bytes]:
    return [f for f in raw.split(b"\r\n\r\n") if f]


def _with_id(frame: bytes, action_id: str) -> bytes:
    lines = [ln for ln in frame.split(b"\r\n") if not ln.startswith(b"ActionID: ")]
    return b"\r\n".join([lines[0], b"ActionID: " + action_id.encode()] + lines[1:]) + b"\r\n\r\n"


class CaptureLists:
    """The QueueStatus / CoreShowChannels answers recorded in ami-actions (ActionIDs cti-44 / cti-47)."""

    def __init__(self, captures: Path) -> None:
        frames = _frames((captures / "ami-actions.in.raw").read_bytes())
        self.queue_items = [f for f in frames if b"ActionID: cti-44" in f and f.startswith(b"Event: Queue")
                            and not f.startswith(b"Event: QueueStatusComplete")]
        self.channel_items = [f for f in frames if b"ActionID: cti-47" in f and f.startswith(b"Event: CoreShowChannel\r\n")]
        boot = [f for f in _frames((captures / "ami-restart-reconnect.in.raw").read_bytes()) if f.startswith(b"Event: FullyBooted")]
        self.fully_booted = boot[0] + b"\r\n\r\n"


class FakeAmi:
    """A scripted AMI peer. ``plans[i]`` configures the i-th connection."""

    def __init__(self, lists: CaptureLists, secret: str = SECRET) -> None:
        self.lists = lists
        self.secret = secret
        self.sessions: list[list[dict[str, str]]] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.plans: list[dict[str, Any]] = []
        self.server: asyncio.AbstractServer | None = None
        self.resynced = [asyncio.Event() for _ in range(10)]

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for w in self.writers:
            w.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def plan(self, i: int) -> dict[str, Any]:
        return self.plans[i] if i < len(self.plans) else (self.plans[-1] if self.plans else {})

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        idx = len(self.sessions)
        actions: list[dict[str, str]] = []
        self.sessions.append(actions)
        self.writers.append(writer)
        plan = self.plan(idx)
        writer.write(plan.get("banner", b"Asterisk Call Manager/11.0.0\r\n"))
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                act = dict(line.split(": ", 1) for line in raw.decode().strip().split("\r\n"))
                actions.append(act)
                await self._answer(idx, plan, act, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, idx: int, plan: dict[str, Any], act: dict[str, str], w: asyncio.StreamWriter) -> None:
        aid = act.get("ActionID", "")
        name = act["Action"]
        head = f"Response: Success\r\nActionID: {aid}\r\n".encode()
        if name == "Challenge":
            w.write(head + f"Challenge: {CHALLENGE}\r\n\r\n".encode())
        elif name == "Login":
            key = hashlib.md5((CHALLENGE + self.secret).encode()).hexdigest()
            if act.get("Key") != key:
                await asyncio.sleep(0.05)
                w.write(f"Response: Error\r\nActionID: {aid}\r\nMessage: Authentication failed\r\n\r\n".encode())
                await w.drain()
                w.close()
                return
            w.write(head + b"Message: Authentication accepted\r\n\r\n" + self.lists.fully_booted)
        elif name == "CoreSettings":
            if plan.get("core_settings_error"):  # e.g. a user without the system/reporting write class
                w.write(f"Response: Error\r\nActionID: {aid}\r\nMessage: Permission denied\r\n\r\n".encode())
            else:  # as the real Asterisk 22.10.1 answers the shipped cti user
                version = plan.get("asterisk_version", "22.10.1")
                w.write(head + f"AMIversion: 11.0.0\r\nAsteriskVersion: {version}\r\nSystemName: \r\n"
                        "CoreMaxCalls: 0\r\nCoreMaxLoadAvg: 0.000000\r\nCoreRunUser: \r\nCoreRunGroup: \r\n"
                        "CoreMaxFilehandles: 0\r\nCoreRealTimeEnabled: No\r\nCoreCDRenabled: Yes\r\n"
                        "CoreHTTPenabled: No\r\nSoundsSearchCustomDir: No\r\n\r\n".encode())
        elif name == "Ping":
            if not plan.get("mute_pings"):
                w.write(head + b"Ping: Pong\r\nTimestamp: 1795372520.449278\r\n\r\n")
        elif name == "QueueStatus":
            items = [f for f in self.lists.queue_items if not any(d in f for d in plan.get("drop", ()))]
            w.write(head + b"EventList: start\r\nMessage: Queue status will follow\r\n\r\n"
                    + b"".join(_with_id(f, aid) for f in items)
                    + f"Event: QueueStatusComplete\r\nActionID: {aid}\r\nEventList: Complete\r\nListItems: {len(items)}\r\n\r\n".encode())
        elif name == "CoreShowChannels":
            items = [] if plan.get("no_channels") else self.lists.channel_items
            w.write(head + b"EventList: start\r\nMessage: Channels will follow\r\n\r\n"
                    + b"".join(_with_id(f, aid) for f in items)
                    + f"Event: CoreShowChannelsComplete\r\nActionID: {aid}\r\nEventList: Complete\r\nListItems: {len(items)}\r\n\r\n".encode())
            await w.drain()
            self.resynced[idx].set()
            if plan.get("drop_after_resync"):
                w.close()
        elif name == "QueuePause":
            if act.get("Interface", "").startswith("Local/9999"):
                w.write(f"Response: Error\r\nActionID: {aid}\r\nMessage: Interface not found\r\n\r\n".encode())
            else:
                w.write(head + b"Message: Interface paused successfully\r\n\r\n")
        elif name == "Originate":
            if plan.get("answer_originate"):
                w.write(head + b"Message: Originate successfully queued\r\n\r\n")
            # else: no answer; the test drops the connection while it is pending
        await w.drain()


def _config(port: int, **kw: Any) -> AmiConfig:
    base = dict(host="127.0.0.1", port=port, username="cti", secret=SECRET, ping_interval=30.0,
                ping_timeout=5.0, reconnect_min=0.01, reconnect_max=0.05, server="pbx1")
    base.update(kw)
    return AmiConfig(**base)


@pytest.fixture
async def fake(captures: Path):
    f = FakeAmi(CaptureLists(captures))
    yield f
    await f.close()


async def _next(sub, topic: str, pred=lambda p: True, timeout: float = 5.0) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async for m in sub:
            if m.topic == topic and pred(m.payload):
                return m.payload
        raise AssertionError("bus closed")

    return await asyncio.wait_for(go(), timeout)


async def test_bad_secret_at_start_is_a_clear_error_naming_the_keys(fake: FakeAmi) -> None:
    fake.secret = "the-real-one"
    port = await fake.start()
    svc = AmiService(_config(port), InMemoryBus())
    with capture_logs() as logs, pytest.raises(AmiAuthError) as exc:
        await svc.start()
    assert "ami.secret" in str(exc.value) and "ami.username" in str(exc.value)
    assert "Authentication failed" in str(exc.value)
    assert SECRET not in repr(logs)
    # the secret never crossed the wire either (MD5 challenge)
    assert all(SECRET not in repr(a) for a in fake.sessions[0])
    assert not svc.connected


async def test_action_errors_carry_asterisks_message(fake: FakeAmi) -> None:
    port = await fake.start()
    svc = AmiService(_config(port), InMemoryBus())
    await svc.start()
    try:
        await svc.wait_ready()
        with pytest.raises(AmiActionError) as exc:
            await svc.queue_pause("Local/9999@agents/n", True, reason="meeting", queue="complaints")
        assert exc.value.message == "Interface not found"
        ok = await svc.queue_pause("Local/3001@agents/n", True, reason="meeting", queue="complaints")
        assert ok.get("Message") == "Interface paused successfully"
        sent = [a for a in fake.sessions[0] if a["Action"] == "QueuePause"]
        assert sent[1] == {"Action": "QueuePause", "ActionID": sent[1]["ActionID"], "Interface": "Local/3001@agents/n",
                           "Paused": "true", "Queue": "complaints", "Reason": "meeting"}
    finally:
        await svc.stop()


async def test_drop_mid_frame_then_reconnect_resyncs_without_ghosts_or_a_second_originate(
        fake: FakeAmi, engine) -> None:
    # connection 2 comes back changed: Zhou Qiang logged out, the waiting caller gone
    fake.plans = [{}, {"drop": [b"Name: Zhou Qiang", b"Event: QueueEntry"], "no_channels": True, "answer_originate": True}]
    port = await fake.start()
    bus = InMemoryBus()
    sub = bus.subscribe("ami.link", maxsize=10_000)
    ended_sub = bus.subscribe("call.ended", maxsize=10_000)
    svc = AmiService(_config(port), bus, sessionmaker(engine), flush_interval=0.01)
    await svc.start()
    try:
        await svc.wait_ready()
        now = svc.clock()
        call = svc.state.calls.get("1795372520.27")
        assert call is not None and call.queue == "complaints" and call.state == "queued" and call.priority == 0
        assert [w["uniqueid"] for w in svc.state.queue_snapshot("complaints", now)["waiting"]] == ["1795372520.27"]
        zq = svc.state.agents.by_interface("Local/3002@agents/n")
        assert zq is not None and zq.state(now) == "paused" and zq.paused_reason == "meeting"
        assert len(svc.state.agents.agents) == 6
        # the open call is on disk already (restart reconciliation relies on it)
        await svc.recorder.flush()

        # a click-to-dial is pending when the PBX drops the link in the middle of a frame
        originate = asyncio.create_task(svc.originate("PJSIP/1001", exten="13700001111", context="outbound",
                                                      caller_id='"cti" <800>'))
        while not any(a["Action"] == "Originate" for a in fake.sessions[0]):
            await asyncio.sleep(0.005)
        w = fake.writers[0]
        w.write(b"Event: QueueCallerJoin\r\nPrivilege: agent,all\r\nChannel: Local/800555")
        await w.drain()
        w.close()
        with pytest.raises(AmiDisconnectedError):
            await originate

        resynced = await _next(sub, "ami.link", lambda p: p["state"] == "resynced" and len(fake.sessions) == 2)
        assert resynced["calls"] == 0
        ended = await _next(ended_sub, "call.ended")
        assert ended["uniqueid"] == "1795372520.27" and ended["outcome"] == "unknown"
        assert svc.state.calls.active() == []
        assert svc.state.queue_snapshot("complaints", svc.clock())["waiting"] == []
        assert svc.state.agents.by_interface("Local/3002@agents/n") is None  # no stale agent
        assert len(svc.state.agents.agents) == 5
        # the pending Originate was not re-sent on the new connection
        assert [a["Action"] for a in fake.sessions[1]].count("Originate") == 0
        assert svc.link.parser.stats.discarded_bytes > 0  # the cut frame was thrown away

        await svc.recorder.flush()
        async with sessionmaker(engine)() as s:
            rows = (await s.execute(select(calls))).mappings().all()
        assert len(rows) == 1
        r = rows[0]
        assert (r["server"], r["uniqueid"], r["queue"], r["outcome"]) == ("pbx1", "1795372520.27", "complaints", "unknown")
        assert r["ended_at"] is not None and r["caller_number"] == "13700001111"
    finally:
        await svc.stop()


async def test_ping_watchdog_detects_a_silent_peer_and_reconnects(fake: FakeAmi) -> None:
    fake.plans = [{"mute_pings": True}, {}]
    port = await fake.start()
    bus = InMemoryBus()
    sub = bus.subscribe("ami.link")
    svc = AmiService(_config(port, ping_interval=0.05, ping_timeout=0.1), bus)
    with capture_logs() as logs:
        await svc.start()
        try:
            await _next(sub, "ami.link", lambda p: p["state"] == "disconnected")
            await _next(sub, "ami.link", lambda p: p["state"] == "resynced")
        finally:
            await svc.stop()
    assert len(fake.sessions) >= 2
    assert any(e["event"] == "ami.ping_timeout" for e in logs)


async def test_unreachable_pbx_at_start_keeps_retrying_in_the_background(fake: FakeAmi) -> None:
    port = await fake.start()
    await fake.close()  # nothing listens there any more
    svc = AmiService(_config(port), InMemoryBus())
    await svc.start()  # does not raise: the daemon keeps serving AGI meanwhile
    try:
        await asyncio.sleep(0.1)
        assert not svc.connected
        assert svc.link.connects == 0
    finally:
        await svc.stop()


async def test_daemon_restart_reconciles_open_calls_at_the_first_resync(fake: FakeAmi, engine) -> None:
    from cti.calls.model import Call, Leg
    from cti.calls.recorder import CallRecorder

    # what the previous daemon left on disk: a waiting caller (still there) and an answered call (gone)
    t = 1795372500.0
    waiting = Call("pbx1", "1795372520.27", started_at=t, linkedid="1795372520.26", caller_number="13700001111",
                   priority=0, state="queued", legs=[Leg("complaints", t + 1)])
    talking = Call("pbx1", "1795372400.9", started_at=t - 100, caller_number="13800138000", state="talking",
                   legs=[Leg("mobile", t - 99, answered_at=t - 90, agent_interface="Local/1001@agents/n",
                             hold_time=9, result="answered")])
    rec = CallRecorder(sessionmaker(engine))
    for c in (waiting, talking):
        rec.submit(c.record(t))
    await rec.flush()

    port = await fake.start()
    svc = AmiService(_config(port), InMemoryBus(), sessionmaker(engine), clock=lambda: t + 20, flush_interval=0.01)
    await svc.start()
    try:
        await svc.wait_ready()
        assert [c.uniqueid for c in svc.state.calls.active()] == ["1795372520.27"]
        kept = svc.state.calls.get("1795372520.27")
        assert (kept.state, kept.queue, kept.restored) == ("queued", "complaints", False)
        await svc.recorder.flush()
    finally:
        await svc.stop()
    async with sessionmaker(engine)() as s:
        rows = {r["uniqueid"]: r for r in (await s.execute(select(calls))).mappings().all()}
    assert rows["1795372520.27"]["ended_at"] is None
    gone = rows["1795372400.9"]
    assert (gone["outcome"], gone["queue"], gone["agent_interface"], gone["wait_s"]) == \
        ("answered", "mobile", "Local/1001@agents/n", 9.0)
    assert gone["ended_at"] is not None and gone["talk_s"] == 110.0  # up to the resync: the best cti knows


def test_backoff_is_capped_exponential_with_jitter() -> None:
    import random

    from cti.ami.link import backoff_delay

    rng = random.Random(7)
    for attempt, (lo, hi) in enumerate([(0.25, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (2.5, 5.0), (2.5, 5.0)]):
        delays = [backoff_delay(attempt, 0.5, 5.0, rng) for _ in range(200)]
        assert lo <= min(delays) and max(delays) <= hi
        assert max(delays) - min(delays) > (hi - lo) / 2  # jittered, not a fixed step
    assert backoff_delay(10_000, 0.5, 30.0, rng) <= 30.0


async def test_a_failing_handler_is_logged_with_its_event_and_the_reader_goes_on(fake: FakeAmi) -> None:
    from cti.ami.link import AmiLink

    port = await fake.start()
    seen: list[str] = []

    def on_event(msg, now) -> None:
        seen.append(msg.name)
        if msg.name == "Boom":
            raise RuntimeError("handler bug")

    link = AmiLink(_config(port), on_event=on_event, on_resync=lambda items, now: None)
    with capture_logs() as logs:
        await link.start()
        try:
            await asyncio.wait_for(link.ready.wait(), 5)
            w = fake.writers[0]
            w.write(b"Event: Boom\r\nPrivilege: call,all\r\nUniqueid: 1.1\r\n\r\nEvent: Hangup\r\nPrivilege: call,all\r\n"
                    b"Uniqueid: 1.2\r\n\r\n")
            await w.drain()
            while "Hangup" not in seen:
                await asyncio.sleep(0.005)
        finally:
            await link.stop()
    assert seen[-2:] == ["Boom", "Hangup"]  # FullyBooted (buffered during the resync) came first
    assert seen[0] == "FullyBooted"
    errors = [e for e in logs if e["event"] == "ami.handler_error"]
    assert [(e["ami_event"], e["uniqueid"]) for e in errors] == [("Boom", "1.1")]
    assert link.connected is False


@pytest.mark.parametrize("stable_after, expected", [(3600.0, [1, 2, 3]), (0.0, [1, 1, 1])])
async def test_backoff_grows_on_flapping_and_resets_after_a_stable_connection(
        fake: FakeAmi, stable_after: float, expected: list[int]) -> None:
    from cti.ami.link import AmiLink

    fake.plans = [{"drop_after_resync": True}]
    port = await fake.start()
    link = AmiLink(_config(port), on_event=lambda m, now: None, on_resync=lambda items, now: None,
                   stable_after=stable_after)
    with capture_logs() as logs:
        await link.start()
        try:
            while len(fake.sessions) < 4:
                await asyncio.sleep(0.01)
        finally:
            await link.stop()
    attempts = [e["attempt"] for e in logs if e["event"] == "ami.reconnect_scheduled"]
    assert attempts[:3] == expected


async def test_events_missing_their_key_headers_are_ignored_with_one_warning(fake: FakeAmi) -> None:
    """Interface/Uniqueid/Queue absent (seen in other projects' AMI dumps): no phantom keyed ''."""
    port = await fake.start()
    svc = AmiService(_config(port), InMemoryBus())
    with capture_logs() as logs:
        await svc.start()
        try:
            await svc.wait_ready()
            before = (set(svc.state.agents.agents), set(svc.state.calls.calls), set(svc.state.queues.queues))
            w = fake.writers[0]
            w.write(b"Event: QueueMemberStatus\r\nPrivilege: agent,all\r\nQueue: mobile\r\nMemberName: Ghost\r\n"
                    b"Status: 1\r\nPaused: 0\r\n\r\n"
                    b"Event: QueueCallerJoin\r\nPrivilege: agent,all\r\nChannel: Local/x;2\r\nUniqueid: 7.7\r\n"
                    b"Position: 1\r\nCount: 1\r\n\r\n"
                    b"Event: QueueCallerJoin\r\nPrivilege: agent,all\r\nChannel: Local/y;2\r\nUniqueid: 7.8\r\n"
                    b"Position: 2\r\nCount: 2\r\n\r\n"
                    b"Event: AgentCalled\r\nPrivilege: agent,all\r\nQueue: mobile\r\nInterface: Local/1001@agents/n\r\n"
                    b"MemberName: Li Na\r\n\r\n"
                    b"Event: QueueCallerJoin\r\nPrivilege: agent,all\r\nChannel: Local/z;2\r\nUniqueid: 8.8\r\n"
                    b"Queue: mobile\r\nPosition: 1\r\nCount: 1\r\n\r\n")  # a whole one, last
            await w.drain()
            for _ in range(1000):
                if svc.state.calls.get("8.8") is not None:
                    break
                await asyncio.sleep(0.005)
            after = (set(svc.state.agents.agents), set(svc.state.calls.calls) - {("pbx1", "8.8")},
                     set(svc.state.queues.queues))
        finally:
            await svc.stop()
    assert after == before and "" not in after[0] | {k[1] for k in after[1]} | after[2]
    warned = [(e["ami_event"], e["missing"]) for e in logs if e["event"] == "ami.event_incomplete"]
    assert warned == [("QueueMemberStatus", ["Interface"]), ("QueueCallerJoin", ["Queue"]),
                      ("AgentCalled", ["Uniqueid"])]
    assert svc.incomplete_events == 4


def _version_logs(logs: list[dict[str, Any]]) -> list[tuple[str, str | None, str | None]]:
    return [(e["event"], e.get("asterisk_version"), e.get("ami_version")) for e in logs
            if e["event"].startswith("ami.pbx_version")]


async def test_an_asterisk_older_than_16_is_a_warning_by_default(fake: FakeAmi) -> None:
    """Asterisk 13 (AMI 2.10.6): Newexten is in the 'call' class cti reads."""
    fake.plans = [{"banner": b"Asterisk Call Manager/2.10.6\r\n", "asterisk_version": "13.38.3"}]
    port = await fake.start()
    svc = AmiService(_config(port), InMemoryBus())
    with capture_logs() as logs:
        await svc.start()
        try:
            await svc.wait_ready()
        finally:
            await svc.stop()
    assert _version_logs(logs) == [("ami.pbx_version_unsafe", "13.38.3", "2.10.6")]
    assert [a["Action"] for a in fake.sessions[0]][:3] == ["Challenge", "Login", "CoreSettings"]


async def test_refuse_policy_does_not_connect_to_an_asterisk_older_than_16(fake: FakeAmi) -> None:
    fake.plans = [{"banner": b"Asterisk Call Manager/4.0.3\r\n", "asterisk_version": "15.7.4"}]
    port = await fake.start()
    svc = AmiService(_config(port, min_version_policy="refuse"), InMemoryBus())
    with pytest.raises(AmiVersionError) as exc:
        await svc.start()
    assert "15.7.4" in str(exc.value) and "ami.min_version_policy" in str(exc.value)
    assert not svc.connected
    assert "QueueStatus" not in [a["Action"] for a in fake.sessions[0]]  # nothing consumed


@pytest.mark.parametrize("banner, event", [
    (b"Asterisk Call Manager/2.10.6\r\n", "ami.pbx_version_unsafe"),  # Asterisk 13
    (b"Asterisk Call Manager/5.0.0\r\n", "ami.pbx_version"),  # Asterisk 16.x
    (b"Asterisk Call Manager/11.0.0\r\n", "ami.pbx_version"),  # Asterisk 22
])
async def test_the_banner_tells_the_version_when_coresettings_is_refused(
        fake: FakeAmi, banner: bytes, event: str) -> None:
    fake.plans = [{"banner": banner, "core_settings_error": True}]
    port = await fake.start()
    svc = AmiService(_config(port), InMemoryBus())
    with capture_logs() as logs:
        await svc.start()
        try:
            await svc.wait_ready()
        finally:
            await svc.stop()
    assert _version_logs(logs) == [(event, None, banner[22:-2].decode())]


def test_asterisk_22_is_safe_and_older_than_16_is_not() -> None:
    from cti.ami.version import PbxVersion, parse_version

    assert [parse_version(t) for t in ("22.10.1", "certified/18.9-cert1", "16.0.0-rc1", "GIT-master-1a2b")] == \
        [(22, 10, 1), (18, 9, 0), (16, 0, 0), None]
    cases = {("22.10.1", "11.0.0"): False, ("16.0.0", "5.0.0"): False, ("15.7.4", "4.0.3"): True,
             ("13.38.3", "2.10.6"): True, ("", "2.10.6"): True, ("", "5.0.0"): False, ("", "1.3"): True,
             ("GIT-master-1a2b", ""): False, ("", ""): False}
    assert {k: PbxVersion(*k).unsafe for k in cases} == cases
