"""The routing-rules API over the real daemon (HTTP + FastAGI on loopback, SQLite and PostgreSQL): admin only,
validation errors naming fields, a save or a rollback steering the very next FastAGI call, "test a caller"."""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime, timezone

from cti.agi.peer import asterisk_env, run_agi_call
from cti.app import Daemon
from cti.bus import InMemoryBus
from test_web_support import Web, web  # noqa: F401  (fixture)

DID = "4008001234"
STRANGER = "13912345678"  # no customer has this number


def always_open(doc: dict) -> dict:
    """Open all day in a zone where it is not 23:59 now (hours cannot reach 24:00), so no test depends on the clock."""
    doc = copy.deepcopy(doc)
    doc["hours"] = {str(d): "00:00-23:59" for d in range(7)}
    doc["timezone"] = "UTC" if datetime.now(timezone.utc).hour != 23 else "Asia/Shanghai"
    doc["holidays"] = []
    return doc


async def agi(web: Web, callerid: str, extension: str, uniqueid: str) -> dict[str, str]:
    env = asterisk_env(uniqueid=uniqueid, callerid=callerid, calleridname="", extension=extension)
    out = await run_agi_call("127.0.0.1", web.daemon.agi.port, env)
    assert out.status == "SUCCESS", out
    return out.variables


async def test_only_admins_reach_the_routing_api(web: Web) -> None:
    for user in ("alice", "sue"):
        h = web.auth(await web.login(user))
        for method, path in (("GET", "/api/routing/rules"), ("PUT", "/api/routing/rules"),
                             ("GET", "/api/routing/versions"), ("POST", "/api/routing/versions/1/activate"),
                             ("POST", "/api/routing/test")):
            async with web.http.request(method, web.base + path, headers=h, json={}) as r:
                assert r.status == 403, (user, method, path, r.status)
    async with web.http.get(web.base + "/api/routing/rules") as r:
        assert r.status == 401
    async with web.http.get(web.base + "/routing") as r:  # the page itself logs in
        assert r.status == 200 and "routing.js" in await r.text()


async def test_bad_rules_are_refused_with_the_fields_named(web: Web) -> None:
    h = web.auth(await web.login("adam"))
    async with web.http.get(web.base + "/api/routing/rules", headers=h) as r:
        cur = await r.json()
    assert cur["source"] == "config" and cur["version"] is None and "crosssell" in cur["rules"]
    bad = copy.deepcopy(cur["rules"])
    bad["dids"] = {DID: "nosuchqueue"}
    bad["hours"]["2"] = "18:00-09:00"
    bad["holidays"] = ["2026-02-30"]
    async with web.http.put(web.base + "/api/routing/rules", headers=h, json={"rules": bad}) as r:
        assert r.status == 400
        fields = {e["field"] for e in (await r.json())["errors"]}
    assert fields == {f"dids.{DID}", "hours.2", "holidays[0]"}
    async with web.http.get(web.base + "/api/routing/versions", headers=h) as r:
        assert (await r.json())["versions"] == []
    async with web.http.put(web.base + "/api/routing/rules", headers={**h, "Origin": "http://evil.example"},
                            json={"rules": cur["rules"]}) as r:
        assert r.status == 403  # origin-checked like every console write


async def test_a_save_steers_the_next_fastagi_call_and_a_rollback_steers_it_back(web: Web) -> None:
    h = web.auth(await web.login("adam"))
    before = await agi(web, STRANGER, DID, "1795372412.1")
    assert before["CTI_ROUTE"] != "did"  # the file config maps no number

    async with web.http.get(web.base + "/api/routing/rules", headers=h) as r:
        doc = always_open((await r.json())["rules"])
    v1 = copy.deepcopy(doc)
    v1["dids"] = {DID: "appliances"}
    async with web.http.put(web.base + "/api/routing/rules", headers=h, json={"rules": v1, "comment": "800 line"}) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["version"] == 1
    first = await agi(web, STRANGER, DID, "1795372412.2")
    assert (first["CTI_QUEUE"], first["CTI_ROUTE"], first["CTI_ACTION"]) == ("appliances", "did", "queue")

    v2 = copy.deepcopy(v1)
    v2["dids"] = {DID: "mobile"}
    v2["crosssell"] = v2["crosssell"][1:]
    async with web.http.put(web.base + "/api/routing/rules", headers=h,
                            json={"rules": v2, "comment": "to mobile"}) as r:
        assert r.status == 200 and (await r.json())["version"] == 2
    second = await agi(web, STRANGER, DID, "1795372412.3")
    assert (second["CTI_QUEUE"], second["CTI_ROUTE"]) == ("mobile", "did")
    hub = web.daemon.web.hub
    assert [r.id for r in hub.rules] == [r.id for r in hub.cache.rules] == ["phone-case-for-new-phone"]

    async with web.http.get(web.base + "/api/routing/versions", headers=h) as r:
        vs = (await r.json())["versions"]
    assert [(v["version"], v["active"], v["created_by"], v["comment"]) for v in vs] == [
        (2, True, "adam", "to mobile"), (1, False, "adam", "800 line")]
    async with web.http.post(web.base + "/api/routing/versions/1/activate", headers=h) as r:
        assert r.status == 200 and (await r.json())["rules"]["dids"] == {DID: "appliances"}
    back = await agi(web, STRANGER, DID, "1795372412.4")
    assert (back["CTI_QUEUE"], back["CTI_ROUTE"]) == ("appliances", "did")
    assert len(hub.rules) == 2
    async with web.http.post(web.base + "/api/routing/versions/77/activate", headers=h) as r:
        assert r.status == 404

    # a restarted daemon starts with the active saved version, not the file config; a later save on the
    # first daemon reaches it through routing.rules_changed (here a shared in-memory bus stands for Redis)
    s = web.daemon.settings
    again = Daemon(s, bus=web.daemon.bus)
    await again.start()
    try:
        env = asterisk_env(uniqueid="1795372412.5", callerid=STRANGER, calleridname="", extension=DID)
        out = await run_agi_call("127.0.0.1", again.agi.port, env)
        assert (out.variables["CTI_QUEUE"], out.variables["CTI_ROUTE"]) == ("appliances", "did")
        assert len(again.web.hub.rules) == 2
        async with web.http.post(web.base + "/api/routing/versions/2/activate", headers=h) as r:
            assert r.status == 200
        for _ in range(200):
            if again.routes.rules.dids.get(DID) == "mobile":
                break
            await asyncio.sleep(0.01)
        env = asterisk_env(uniqueid="1795372412.6", callerid=STRANGER, calleridname="", extension=DID)
        out = await run_agi_call("127.0.0.1", again.agi.port, env)
        assert (out.variables["CTI_QUEUE"], out.variables["CTI_ROUTE"]) == ("mobile", "did")
    finally:
        again.bus = InMemoryBus()  # the shared bus is the first daemon's to close
        await again.stop()


async def test_test_a_caller_shows_the_route_a_caller_gets(web: Web) -> None:
    h = web.auth(await web.login("adam"))
    async with web.http.get(web.base + "/api/routing/rules", headers=h) as r:
        doc = always_open((await r.json())["rules"])
    doc["dids"] = {DID: "mobile"}
    doc["holidays"] = ["2026-10-01"]
    async with web.http.put(web.base + "/api/routing/rules", headers=h, json={"rules": doc}) as r:
        assert r.status == 200

    async def test(**b):
        async with web.http.post(web.base + "/api/routing/test", headers=h, json=b) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    stranger = await test(callerid="139 1234 5678", dialed=DID)
    assert stranger["number"]["e164"] == "+8613912345678" and stranger["found"] is False
    assert {k: stranger["decision"][k] for k in ("queue", "route", "action", "priority")} == {
        "queue": "mobile", "route": "did", "action": "queue", "priority": 0}
    # the seeded customer: VIP with an open complaint -> complaints, boosted twice
    known = await test(callerid="+86 138-0013-8000", dialed=DID)
    assert known["found"] is True and known["customer"]["customer_id"] == web.customer_id
    assert known["customer"]["vip"] and known["customer"]["open_complaint"]
    assert {k: known["decision"][k] for k in ("queue", "route", "priority")} == {
        "queue": "complaints", "route": "complaint", "priority": 15}
    menu = await test(callerid=STRANGER, dialed="4008009999")
    assert (menu["decision"]["action"], menu["decision"]["route"]) == ("ivr", "menu")
    picked = await test(callerid=STRANGER, dialed="4008009999", ivr_choice="3")
    assert (picked["decision"]["queue"], picked["decision"]["route"]) == ("complaints", "ivr")
    holiday = await test(callerid=STRANGER, dialed=DID, at="2026-10-01T10:00:00+00:00")
    assert holiday["holiday"] is True and holiday["decision"]["action"] == "afterhours"
    # a draft is tested without being saved
    draft = copy.deepcopy(doc)
    draft["dids"] = {DID: "appliances"}
    d = await test(callerid=STRANGER, dialed=DID, rules=draft)
    assert d["draft"] and d["decision"]["queue"] == "appliances"
    async with web.http.get(web.base + "/api/routing/versions", headers=h) as r:
        assert len((await r.json())["versions"]) == 1
    draft["ivr"] = {"1": "x"}
    async with web.http.post(web.base + "/api/routing/test", headers=h,
                             json={"callerid": STRANGER, "rules": draft}) as r:
        assert r.status == 400 and (await r.json())["errors"][0]["field"] == "ivr.1"
