"""Issue 17, item 4: FastAGI does not trust any peer. Attacks over real TCP against a running daemon:

* a peer outside ``agi.allowed_peers`` gets no decision (one log line per address);
* a second session with a live call's uniqueid cannot change the customer on the agent's pop;
* phantom sessions (uniqueids no AMI channel ever shows) leave no call rows.
(tests/test_agi_peer.py covers the simulated Asterisk side, not this.)"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from e2e_world import World, open_world
from sqlalchemy import func, select
from structlog.testing import capture_logs

from cti.agi.peer import asterisk_env, run_agi_call
from cti.app import Daemon
from cti.calls.tracker import UNCONFIRMED_TTL_S, CallTracker
from cti.config import load_settings
from cti.db.tables import calls


@pytest.fixture
async def lite(tmp_path: Path):
    s = load_settings(None, env={}).replace("database", url=f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}")
    s = s.replace("greeting", sounds_dir=str(tmp_path / "sounds"))
    async for w in open_world(s, tmp_path, greetings=False):
        yield w


async def test_a_peer_outside_allowed_peers_gets_no_decision_and_one_log_line(tmp_path: Path) -> None:
    s = load_settings(None, env={}).replace("database", url=f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}")
    s = s.replace("greeting", sounds_dir=str(tmp_path / "sounds")).replace("ami", enabled=False)
    s = s.replace("agi", port=0, allowed_peers=("192.0.2.0/24",)).replace("http", port=0)
    daemon = Daemon(s)
    await daemon.start()
    try:
        with capture_logs() as logs:
            for i in range(4):
                env = asterisk_env(uniqueid=f"1700000000.{i}", callerid="13800138000", calleridname="x",
                                   port=daemon.agi.port)
                out = await run_agi_call("127.0.0.1", daemon.agi.port, env, timeout=5.0)
                assert out.variables == {} and out.commands == []
        assert [e["peer"] for e in logs if e["event"] == "agi_peer_refused"] == ["127.0.0.1"]
    finally:
        await daemon.stop()


async def test_a_forged_session_with_a_live_uniqueid_does_not_change_the_customer_on_the_pop(lite: World) -> None:
    alice = lite.customer(lambda p: p.fields["products"].startswith("mobile") and not p.complaint)
    mallory = lite.customer(lambda p: p is not alice and not p.complaint)
    alice_id, mallory_id = await lite.customer_id(alice), await lite.customer_id(mallory)
    agent = await lite.agent("mobile1")  # not ready yet: the call waits in the queue
    call = lite.pbx.place_call(alice.caller_number, alice.caller_name, patience=600, talk_time=600)
    await call.wait("queued", timeout=20)
    port = lite.settings.agi.port
    for _ in range(6):  # the attacker replays the live uniqueid with another caller
        env = asterisk_env(uniqueid=call.uniqueid, callerid=mallory.caller_number, calleridname="x", port=port)
        out = await run_agi_call("127.0.0.1", port, env, timeout=5.0)
        assert out.variables.get("CTI_QUEUE")  # it still gets an answer on the wire
    await agent.state("ready")
    pop = await agent.next("screen_pop", timeout=20)
    assert pop["call"]["uniqueid"] == call.uniqueid
    assert pop["customer"]["id"] == alice_id != mallory_id
    assert lite.daemon.ami.state.calls.get(call.uniqueid).customer_id == alice_id
    call.hangup()
    await agent.ws.close()


async def test_phantom_sessions_leave_no_call_rows(lite: World) -> None:
    port = lite.settings.agi.port
    phantoms = [f"9{uuid.uuid4().int % 10**9}.{i}" for i in range(200)]
    for uid in phantoms:
        env = asterisk_env(uniqueid=uid, callerid="13800138000", calleridname="x", port=port)
        assert (await run_agi_call("127.0.0.1", port, env, timeout=5.0)).variables.get("CTI_QUEUE")
    # a real call after them: once its row is written, the recorder has flushed the phantoms' too
    real = lite.pbx.place_call("13912345678", "Real", patience=0.5)
    await real.wait("finished", timeout=30)
    await lite.call_row(real.uniqueid, lambda r: r["outcome"] is not None, timeout=20)
    async with lite.daemon.engine.connect() as conn:
        n = (await conn.execute(select(func.count()).select_from(calls)
                                .where(calls.c.uniqueid.in_(phantoms)))).scalar_one()
    assert n == 0


def test_decisions_no_ami_channel_confirms_are_forgotten() -> None:
    t = CallTracker("default")
    for i in range(1000):
        t.note_decision(f"1.{i}", at=100.0, customer_id=7)
    assert t.take_dirty() == []  # never recorded while unconfirmed
    t.note_decision("2.0", at=100.0 + UNCONFIRMED_TTL_S + 1)
    assert [c.uniqueid for c in t.active()] == ["2.0"]
    assert t.unconfirmed_expired == 1000


def test_the_first_customer_of_a_call_stays() -> None:
    t = CallTracker("default")
    t.note_decision("1.1", at=100.0, customer_id=7, route="ivr")
    t.note_decision("1.1", at=101.0, customer_id=8, route="product")
    assert t.get("1.1").customer_id == 7
