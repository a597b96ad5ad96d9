"""The 800 line over a real FastAGI socket: the daemon recognizes the caller and routes the call.

The caller side is cti.agi.peer, which answers like Asterisk 22 (see the captures); the daemon
runs with its real database (SQLite and PostgreSQL), lookup, routing and AGI server.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert, update

from cti.agi.peer import asterisk_env, run_agi_call
from cti.app import Daemon
from cti.customers.callerid import normalize
from cti.customers.records import customer_from_fields
from cti.customers.repository import add_customer
from cti.db.tables import customers, tickets

ALWAYS_OPEN = {str(d): "00:00-23:59" for d in range(7)}


@pytest.fixture
def open_settings(settings):
    s = settings.replace("ami", enabled=False)
    s = s.replace("agi", port=0)
    return s.replace("routing", hours=ALWAYS_OPEN)


async def add(engine, **fields) -> int:
    async with engine.begin() as conn:
        return await add_customer(conn, customer_from_fields(fields, "CN"))


@pytest.fixture
async def daemon(open_settings, engine):
    d = Daemon(open_settings)
    await d.start()
    try:
        yield d
    finally:
        await d.stop()


async def call(daemon, callerid: str, name: str = "", script: str = "incoming", args=(), **kw):
    env = asterisk_env(uniqueid="1795372412.1", callerid=callerid, calleridname=name, script=script,
                       port=daemon.agi.port, args=args, **kw)
    return await run_agi_call("127.0.0.1", daemon.agi.port, env)


async def test_known_mobile_customer_goes_to_mobile_with_personal_greeting(daemon, engine):
    cid = await add(engine, phones="13800138000", family_name="王", given_name="伟", title="先生", products="mobile:P50")
    async with engine.begin() as conn:
        await conn.execute(update(customers).where(customers.c.id == cid).values(greeting=f"greet-{cid}-abcdef012345"))
    out = await call(daemon, "+86 138 0013 8000", "Wang Wei")
    assert out.status == "SUCCESS"
    assert out.variables == {
        "CTI_QUEUE": "mobile",
        "CTI_PRIORITY": "0",
        "CTI_GREETING": f"cti/greet-{cid}-abcdef012345",
        "CTI_CUSTOMER_ID": str(cid),
        "CTI_LANG": "zh",
        "CTI_ACTION": "queue",
        "CTI_ROUTE": "product",
    }
    assert all(c.startswith("SET VARIABLE ") for c in out.commands)


async def test_open_complaint_jumps_the_queue(daemon, engine):
    cid = await add(engine, phones="13911112222", family_name="Smith", given_name="John", title="Mr",
                    language="en", vip="yes", products="appliances:Microwave")
    now = datetime.now(timezone.utc)
    async with engine.begin() as conn:
        await conn.execute(insert(tickets).values(customer_id=cid, description="broken", status="open",
                                                  sla_deadline=now + timedelta(hours=24), created_at=now, updated_at=now))
    out = await call(daemon, "0086 139 1111 2222")
    assert (out.variables["CTI_QUEUE"], out.variables["CTI_PRIORITY"], out.variables["CTI_LANG"]) == ("complaints", "15", "en")
    assert out.variables["CTI_GREETING"] == "cti/greet-generic-en"  # not synthesized yet


async def test_unknown_caller_is_asked_in_the_ivr_and_the_digit_decides(daemon):
    first = await call(daemon, "anonymous")
    assert first.variables["CTI_ACTION"] == "ivr"
    assert first.variables["CTI_QUEUE"] == "appliances"  # still set: a failed second AGI still queues
    assert first.variables["CTI_CUSTOMER_ID"] == ""
    second = await call(daemon, "anonymous", script="ivr", args=("2",))
    assert (second.variables["CTI_QUEUE"], second.variables["CTI_ACTION"], second.variables["CTI_ROUTE"]) == ("mobile", "queue", "ivr")


async def test_hostile_capture_environment_is_answered_safely(daemon, captures: Path):
    raw = (captures / "agi-hostile-callerid.in.raw").read_bytes()
    out = await run_agi_call("127.0.0.1", daemon.agi.port, raw)
    assert out.status == "SUCCESS"
    assert out.variables["CTI_QUEUE"] in ("appliances", "mobile", "complaints")
    assert len(out.commands) == 7


async def test_decision_is_published_for_the_call_tracker(daemon, engine):
    await add(engine, phones="13800138000", family_name="王", given_name="伟", products="appliances:Oven")
    sub = daemon.bus.subscribe("agi.decision")
    await call(daemon, "13800138000")
    msg = await asyncio.wait_for(sub.get(), 2)
    assert msg.payload["uniqueid"] == "1795372412.1"
    assert msg.payload["queue"] == "appliances" and msg.payload["caller_e164"] == "+8613800138000"


async def test_database_failure_still_answers_with_the_default_route(daemon):
    class Broken:
        async def lookup(self, e164):
            raise ConnectionError("database is down")

    daemon.routes._lookup = Broken()
    out = await call(daemon, "13800138000")
    assert out.variables["CTI_QUEUE"] == "appliances" and out.variables["CTI_ROUTE"] == "fallback"


async def test_stalled_lookup_answers_within_the_deadline(daemon):
    class Stalled:
        async def lookup(self, e164):
            await asyncio.sleep(60)

    daemon.routes._lookup = Stalled()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    out = await call(daemon, "13800138000")
    assert out.variables["CTI_ROUTE"] == "fallback"
    assert loop.time() - t0 < 5  # deadline 0.3 s; generous bound for a loaded machine


async def test_after_hours(open_settings, engine):
    closed = open_settings.replace("routing", hours={})
    d = Daemon(closed)
    await d.start()
    try:
        out = await call(d, "13800138000")
    finally:
        await d.stop()
    assert out.variables["CTI_ACTION"] == "afterhours"


def test_caller_numbers_in_the_captures_normalize():
    assert normalize("13800138000", "CN").e164 == "+8613800138000"
    assert normalize("075588889999", "CN").e164 == "+8675588889999"
