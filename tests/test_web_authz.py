"""Authorization over real HTTP (issue 17): the daemon's web app on loopback, SQLite and PostgreSQL.

One world per database: customer C1 of dealer D1 with a ticket, a call alice handled, a follow-up
owned by alice and a lead; dealer D2's customer C2. The table sends each endpoint's request as each
account: alice (the agent who handled C1's call), bob (another agent, other skill), sue
(supervisor), adam (admin), d1 (contact of D1: their own customer) and d2 (contact of D2: another
dealer's customer), and states the expected status ("seen"/"hidden": 200 with or without C1's row).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import insert, select

from conftest import _create_pg_database, _drop_pg_database, _pg_url
from cti.agents.accounts import add_agent
from cti.app import Daemon
from cti.config import load_settings
from cti.customers.records import customer_from_fields
from cti.customers.repository import add_customer
from cti.db.tables import calls, org_people, tickets
from cti.outbound import repository as repo
from cti.tickets.org import set_person
from test_web_support import _HASH, PASSWORD

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROLES = ("alice", "bob", "sue", "adam", "d1", "d2")
C1_PHONES = "13900000001"
C1_BODY = {"family_name": "张", "given_name": "三", "title": "先生", "language": "zh", "phones": C1_PHONES,
           "dealer": "D1", "products": "appliances:Rice Cooker R1:2026-01-02"}
ALLOWED = "allowed"  # passes authorization: any status but 401/403 (dialing without a PBX fails later)


@dataclass
class World:
    daemon: Daemon
    base: str
    http: aiohttp.ClientSession
    ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    async def call(self, who: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        async with self.http.request(method, self.base + path.format(**self.ids), json=body, headers=headers) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text


async def seed_world(daemon: Daemon) -> dict[str, int]:
    now = datetime.now(timezone.utc)
    ids: dict[str, int] = {}
    async with daemon.engine.begin() as conn:
        for name, role, iface, skills in [("alice", "agent", "PJSIP/1001", {"appliances": 0}),
                                          ("bob", "agent", "PJSIP/1002", {"mobile": 0}),
                                          ("sue", "supervisor", None, None), ("adam", "admin", None, None),
                                          ("d1", "agent", None, None), ("d2", "agent", None, None)]:
            ids[name] = await add_agent(conn, name, _HASH, display_name=name.title(), role=role, interface=iface,
                                        language="en", skills=skills)
        await repo.add_dealer(conn, "D1", "Dealer One", now=now)
        await repo.add_dealer(conn, "D2", "Dealer Two", now=now)
        await repo.add_dealer_contact(conn, ids["d1"], "D1", now=now)
        await repo.add_dealer_contact(conn, ids["d2"], "D2", now=now)
        await set_person(conn, ids["sue"], now=now, department="care", email="sue@example.com")
        await set_person(conn, ids["alice"], now=now, manager_id=ids["sue"], department="care",
                         product_line="appliances", email="alice@example.com",
                         webhook_url="https://hooks.example.com/alice?access_token=SECRET-ALICE")
        await set_person(conn, ids["bob"], now=now, manager_id=ids["sue"], department="mobile team",
                         product_line="mobile")
        ids["c1"] = await add_customer(conn, customer_from_fields(
            {k: str(v) for k, v in C1_BODY.items()} | {"vip": "no"}, "CN"))
        ids["c2"] = await add_customer(conn, customer_from_fields(
            {"family_name": "李", "given_name": "四", "phones": "13900000002", "dealer": "D2", "vip": "no"}, "CN"))
        ids["t1"] = (await conn.execute(insert(tickets).values(
            customer_id=ids["c1"], category="complaint", product_line="appliances", description="不加热",
            status="open", owner_id=ids["alice"], sla_deadline=now + timedelta(hours=4), created_at=now,
            updated_at=now, escalation_level=0).returning(tickets.c.id))).scalar_one()
        ids["call1"] = (await conn.execute(insert(calls).values(
            server="default", uniqueid="c1.call", customer_id=ids["c1"], queue="appliances", outcome="answered",
            agent_id=ids["alice"], agent_interface="PJSIP/1001", started_at=now - timedelta(hours=1),
            notes="C1 call notes").returning(calls.c.id))).scalar_one()
        fu = await repo.add_followup(conn, ids["c1"], "repair check", now=now, due_at=now - timedelta(hours=1),
                                     owner_id=ids["alice"], skill="appliances")
        ids["f1"] = fu.followup_id
        ids["l1"] = await repo.add_lead(conn, customer_id=ids["c1"], dealer="D1", need="a second cooker",
                                        found_by=ids["alice"], followup_id=ids["f1"], attempt_id=None, credits=[],
                                        now=now)
    return ids


@pytest_asyncio.fixture(scope="module", loop_scope="module",
                        params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
async def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    tmp: Path = tmp_path_factory.mktemp("authz")
    pg = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'cti.db'}"
    else:
        pg = await _create_pg_database()
        url = _pg_url(pg)
    s = load_settings(None, env={}).replace("database", url=url).replace("greeting", sounds_dir=str(tmp / "sounds"))
    daemon = Daemon(s.replace("ami", enabled=False).replace("agi", port=0).replace("http", port=0))
    await daemon.start()
    try:
        ids = await seed_world(daemon)
        async with aiohttp.ClientSession() as http:
            w = World(daemon, f"http://127.0.0.1:{daemon.web.port}", http, ids)
            for name in ROLES:
                async with http.post(w.base + "/api/login", json={"username": name, "password": PASSWORD}) as r:
                    assert r.status == 200, await r.text()
                    w.tokens[name] = (await r.json())["token"]
            yield w
    finally:
        await daemon.stop()
        if pg is not None:
            await _drop_pg_database(pg)


# endpoint: (method, path, body or body(role), is C1's row in the answer?, {role: expected})
# expected: a status, ALLOWED, "seen" (200, C1's row in it) or "hidden" (200, not in it)
TABLE: dict[str, tuple[str, str, Any, Callable[[World, Any], bool] | None, dict[str, Any]]] = {
    "customer card": ("GET", "/api/customers/{c1}", None, None,
                      dict(alice=200, bob=200, sue=200, adam=200, d1=200, d2=403)),
    "customer edit": ("PUT", "/api/customers/{c1}", C1_BODY, None,
                      dict(alice=200, bob=200, sue=200, adam=200, d1=200, d2=403)),
    "customer create for dealer D1": (
        "POST", "/api/customers", lambda role: {**C1_BODY, "phones": f"1390000{ROLES.index(role) + 10:04d}"}, None,
        dict(alice=201, bob=201, sue=201, adam=201, d1=201, d2=403)),
    "ticket": ("GET", "/api/tickets/{t1}", None, None, dict(alice=200, bob=200, sue=200, adam=200, d1=200, d2=403)),
    "tickets of a customer": (
        "GET", "/api/tickets?view=all&customer_id={c1}", None, lambda w, d: w.ids["t1"] in [t["id"] for t in d["tickets"]],
        dict(alice="seen", bob="seen", sue="seen", adam="seen", d1="seen", d2="hidden")),
    "tickets, all": (
        "GET", "/api/tickets?view=all", None, lambda w, d: w.ids["t1"] in [t["id"] for t in d["tickets"]],
        dict(alice="seen", bob="hidden", sue="seen", adam="seen", d1="hidden", d2="hidden")),
    "ticket reopen (illegal from open: 409 once allowed)": (
        "POST", "/api/tickets/{t1}/reopen", {}, None, dict(alice=409, bob=409, sue=409, adam=409, d1=409, d2=403)),
    "ticket assign to its owner": ("POST", "/api/tickets/{t1}/assign", {"owner_id": "{alice}"}, None,
                                   dict(alice=200, bob=403, sue=200, adam=200, d1=403, d2=403)),
    "ticket create": ("POST", "/api/tickets", lambda role: {"customer_id": "{c1}", "description": f"by {role}"}, None,
                      dict(alice=ALLOWED, bob=ALLOWED, sue=ALLOWED, adam=ALLOWED, d1=ALLOWED, d2=403)),
    "ticket create on alice's call": (
        "POST", "/api/tickets", lambda role: {"customer_id": "{c1}", "description": "on the call", "call_id": "{call1}",
                                              "owner_id": "{alice}"}, None,
        dict(alice=201, bob=403, sue=201, adam=201, d1=403, d2=403)),
    "ticket create for an owner outside the chart": (
        "POST", "/api/tickets", lambda role: {"customer_id": "{c1}", "description": "for adam", "owner_id": "{adam}"},
        None, dict(alice=403, bob=403, sue=201, adam=201, d1=403, d2=403)),
    "ticket from alice's call": (
        "POST", "/api/tickets/from-call", lambda role: {"uniqueid": "c1.call", "customer_id": "{c1}",
                                                        "description": "from the call", "owner_id": "{alice}"}, None,
        dict(alice=201, bob=403, sue=201, adam=201, d1=403, d2=403)),
    "call history": ("GET", "/api/calls?q=c1.call", None, lambda w, d: [c["uniqueid"] for c in d["calls"]] == ["c1.call"],
                     dict(alice="seen", bob="hidden", sue="seen", adam="seen", d1="hidden", d2="hidden")),
    "wrap-up of alice's call": (
        "POST", "/api/calls/wrapup", {"uniqueid": "c1.call", "disposition": "resolved", "notes": "ok"}, None,
        dict(alice=200, bob=403, sue=200, adam=200, d1=403, d2=403)),
    "follow-up preview": ("GET", "/api/outbound/followups/{f1}", None, None,
                          dict(alice=200, bob=403, sue=200, adam=200, d1=200, d2=403)),
    "follow-up dial": ("POST", "/api/outbound/followups/{f1}/dial", {}, None,
                       dict(alice=ALLOWED, bob=403, sue=ALLOWED, adam=ALLOWED, d1=403, d2=403)),
    "next follow-ups": (
        "GET", "/api/outbound/next", None, lambda w, d: w.ids["f1"] in [f["followup"]["id"] for f in d["followups"]],
        dict(alice="seen", bob="hidden", sue="hidden", adam="hidden", d1="seen", d2="hidden")),
    "follow-up create": ("POST", "/api/outbound/followups", {"customer_id": "{c1}", "reason": "check"}, None,
                         dict(alice=201, bob=201, sue=201, adam=201, d1=403, d2=403)),
    "leads": ("GET", "/api/outbound/leads", None, lambda w, d: w.ids["l1"] in [x["id"] for x in d["leads"]],
              dict(alice=403, bob=403, sue="seen", adam="seen", d1="seen", d2="hidden")),
    "lead update": ("POST", "/api/outbound/leads/{l1}", {"status": "contacted"}, None,
                    dict(alice=403, bob=403, sue=200, adam=200, d1=200, d2=403)),
    "do-not-call for C1": ("POST", "/api/outbound/dnc", {"customer_id": "{c1}", "reason": "asked"}, None,
                           dict(alice=201, bob=403, sue=201, adam=201, d1=403, d2=403)),
    "do-not-call for a number": ("POST", "/api/outbound/dnc", {"e164": "+8613900009999"}, None,
                                 dict(alice=403, bob=403, sue=201, adam=201, d1=403, d2=403)),
    "back-office question about C1": (
        "POST", "/api/kb/questions", {"question": "怎么办", "customer_id": "{c1}", "product_line": "appliances"}, None,
        dict(alice=ALLOWED, bob=ALLOWED, sue=ALLOWED, adam=ALLOWED, d1=ALLOWED, d2=403)),
    "handover note of team care": (
        "POST", "/api/outbound/handover", {"team": "care", "body": "note", "followup_id": "{f1}"}, None,
        dict(alice=201, bob=403, sue=201, adam=201, d1=403, d2=403)),
}


def _fill(value: Any, ids: dict[str, int]) -> Any:
    """``"{c1}"`` -> the id (as an integer) in request bodies."""
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value[1:-1] in ids:
        return ids[value[1:-1]]
    return value


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(TABLE))
async def test_every_endpoint_as_every_account(world: World, endpoint: str, role: str) -> None:
    method, path, body, visible, expected = TABLE[endpoint]
    want = expected[role]
    if callable(body):
        body = body(role)
    status, data = await world.call(role, method, path, _fill(body, world.ids))
    if want == ALLOWED:
        assert status not in (401, 403), (status, data)
    elif want in ("seen", "hidden"):
        assert status == 200, (status, data)
        assert visible is not None and visible(world, data) == (want == "seen"), data
    else:
        assert status == want, (status, data)


# -- the attacks of the issue, as told ------------------------------------------------------------
async def test_a_dealer_cannot_take_another_dealers_customer(world: World) -> None:
    """d2 rewrites C1 (D1's) with dealer D2: refused, and C1's follow-up stays out of d2's reach."""
    status, _ = await world.call("d2", "PUT", "/api/customers/{c1}", {**C1_BODY, "dealer": "D2"})
    assert status == 403
    assert (await world.call("d2", "GET", "/api/outbound/followups/{f1}"))[0] == 403
    status, card = await world.call("sue", "GET", "/api/customers/{c1}")
    assert card["customer"]["dealer"] == "D1"


async def test_a_dealer_cannot_change_its_own_customers_dealer(world: World) -> None:
    assert (await world.call("d1", "PUT", "/api/customers/{c1}", {**C1_BODY, "dealer": "D2"}))[0] == 403
    assert (await world.call("d1", "PUT", "/api/customers/{c1}", {**C1_BODY, "dealer": None}))[0] == 200
    assert (await world.call("d1", "GET", "/api/customers/{c1}"))[1]["customer"]["dealer"] == "D1"  # kept
    assert (await world.call("d1", "POST", "/api/customers",
                             {**C1_BODY, "phones": "13900000099", "dealer": "D2"}))[0] == 403


async def test_a_dealer_reads_nothing_of_another_dealers_customer(world: World) -> None:
    status, data = await world.call("d1", "GET", "/api/customers/{c2}")
    assert status == 403 and "李" not in str(data)
    status, data = await world.call("d1", "GET", "/api/tickets?view=all&customer_id={c2}")
    assert status == 200 and data["tickets"] == []


# -- item 5: the org chart ------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
async def test_the_org_chart_gives_secrets_to_nobody(world: World, role: str) -> None:
    status, data = await world.call(role, "GET", "/api/org")
    assert status == 200
    assert "SECRET-ALICE" not in str(data) and all("webhook_url" not in p for p in data["people"])
    alice = next(p for p in data["people"] if p["agent_id"] == world.ids["alice"])
    assert alice["display_name"] == "Alice" and alice["role"] == "agent"
    if role in ("sue", "adam"):
        assert alice["email"] == "alice@example.com" and alice["webhook_set"] is True
    else:
        assert set(alice) == {"agent_id", "username", "display_name", "role", "active", "engineer"}


async def test_the_webhook_is_write_only_and_kept_when_not_sent(world: World) -> None:
    status, person = await world.call("adam", "PUT", "/api/org/{bob}", _fill(
        {"manager_id": "{sue}", "department": "mobile team", "product_line": "mobile",
         "webhook_url": "https://hooks.example.com/bob?token=SECRET-BOB"}, world.ids))
    assert status == 200 and "SECRET-BOB" not in str(person) and person["webhook_set"] is True
    status, person = await world.call("adam", "PUT", "/api/org/{bob}", _fill(
        {"manager_id": "{sue}", "department": "mobile team", "product_line": "mobile"}, world.ids))
    assert status == 200 and person["webhook_set"] is True  # kept
    async with world.daemon.engine.connect() as conn:
        stored = (await conn.execute(select(org_people.c.webhook_url)
                                     .where(org_people.c.agent_id == world.ids["bob"]))).scalar()
    assert stored == "https://hooks.example.com/bob?token=SECRET-BOB"

