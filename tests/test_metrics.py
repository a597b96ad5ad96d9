"""``GET /metrics`` on the real daemon (HTTP on loopback, SQLite and PostgreSQL): the exposition parses,
counters follow ``call.ended``, gauges follow the live state, a real FastAGI call lands in the latency
histogram, and no customer data reaches a label."""

from __future__ import annotations

import asyncio
import time

from prometheus_client.parser import text_string_to_metric_families

import cti.ami  # noqa: F401  (import order)
from cti.agi.peer import asterisk_env, run_agi_call
from cti.ami import events as ev
from test_web_support import Web, web  # noqa: F401  (fixture)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def scrape(web: Web) -> tuple[str, dict]:
    async with web.http.get(web.base + "/metrics") as r:  # no token: the Prometheus norm
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=")
        text = await r.text()
    return text, samples(text)


def ended(queue: str, outcome: str, uniqueid: str, **extra) -> dict:
    now = time.time()
    return {"server": "default", "uniqueid": uniqueid, "caller_number": "13800138000", "caller_name": "Wang Wei",
            "queue": queue, "outcome": outcome, "ended_at": now, "wait_s": 12.0, "talk_s": 30.0, "at": now, **extra}


async def until(predicate, web: Web, timeout: float = 5.0) -> dict:
    async def loop():
        while True:
            _, s = await scrape(web)
            if predicate(s):
                return s
            await asyncio.sleep(0.02)
    return await asyncio.wait_for(loop(), timeout)


async def test_openmetrics_when_the_scraper_asks_for_it(web: Web):
    async with web.http.get(web.base + "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}) as r:
        assert r.headers["Content-Type"].startswith("application/openmetrics-text")
        assert (await r.text()).rstrip().endswith("# EOF")


async def test_call_counters_per_queue_follow_call_ended(web: Web):
    bus = web.daemon.bus
    bus.publish("call.ended", ended("appliances", "answered", "1.1"))
    bus.publish("call.ended", ended("appliances", "transferred", "1.2"))
    bus.publish("call.ended", ended("appliances", "abandoned", "1.3"))
    bus.publish("call.ended", ended("complaints", "timeout", "1.4"))
    bus.publish("call.ended", ended("", "ivr_hangup", "1.5"))  # never reached a queue: not offered
    s = await until(lambda s: s.get(("cti_calls_offered_total", (("queue", "complaints"),))) == 1, web)
    assert s[("cti_calls_offered_total", (("queue", "appliances"),))] == 3
    assert s[("cti_calls_answered_total", (("queue", "appliances"),))] == 2
    assert s[("cti_calls_abandoned_total", (("queue", "appliances"),))] == 1
    assert ("cti_calls_answered_total", (("queue", "complaints"),)) not in s
    assert not any(k[0].startswith("cti_calls_") and dict(k[1]).get("queue") in ("", "none") for k in s)


async def test_live_gauges_read_the_live_state(web: Web):
    st = web.daemon.ami.state
    now = time.time()
    member = ev.QueueMemberAdded("default", "mobile", "PJSIP/1001", "Li Na", "PJSIP/1001", "dynamic", 0, 0, 0,
                                 False, 1, False, "", 0)
    st.apply(member, now)
    st.apply(ev.QueueMemberAdded("default", "mobile", "PJSIP/1002", "Chen", "PJSIP/1002", "dynamic", 0, 0, 0,
                                 False, 1, True, "lunch", 0), now)
    st.apply(ev.QueueCallerJoin("default", "PJSIP/trunk-1", "9.1", "9.1", "13800138000", "Wang Wei", "mobile", 1, 1),
             now - 30)
    text, s = await scrape(web)
    assert s[("cti_queue_waiting_callers", (("queue", "mobile"),))] == 1
    assert s[("cti_queue_longest_wait_seconds", (("queue", "mobile"),))] >= 30
    assert s[("cti_agents", (("state", "ready"),))] == 1
    assert s[("cti_agents", (("state", "paused"),))] == 1
    assert s[("cti_queue_agents", (("queue", "mobile"), ("state", "paused")))] == 1
    assert s[("cti_ami_connected", ())] == 0  # AMI disabled in this world
    assert "13800138000" not in text and "Wang Wei" not in text and "9.1" not in text and "lunch" not in text


async def test_agi_decision_latency_histogram_from_a_real_fastagi_call(web: Web):
    _, before = await scrape(web)
    key = ("cti_agi_decision_seconds_count", (("outcome", "ok"),))
    assert before[key] == 0
    env = asterisk_env(uniqueid="1795372412.7", callerid="13800138000", calleridname="Wang", script="incoming",
                       port=web.daemon.agi.port)
    await run_agi_call("127.0.0.1", web.daemon.agi.port, env)
    s = await until(lambda s: s[key] == 1, web)
    assert 0 < s[("cti_agi_decision_seconds_sum", (("outcome", "ok"),))] < 5
    assert s[("cti_agi_decision_seconds_bucket", (("le", "+Inf"), ("outcome", "ok")))] == 1


async def test_ami_link_and_websocket_connections(web: Web):
    web.daemon.bus.publish("ami.link", {"server": "default", "state": "disconnected", "at": time.time()})
    s = await until(lambda s: s[("cti_ami_link_events_total", (("state", "disconnected"),))] == 1, web)
    assert s[("cti_ami_reconnects_total", ())] == 0
    assert s[("cti_websocket_connections", (("stream", "console"),))] == 0
    ws = await web.ws(await web.login("alice"))
    s = await until(lambda s: s[("cti_websocket_connections", (("stream", "console"),))] == 1, web)
    assert s[("cti_websocket_connections", (("stream", "wallboard"),))] == 0
    await ws.close()


async def test_too_many_queue_names_fold_into_other(web: Web):
    bus = web.daemon.bus
    for i in range(80):
        bus.publish("call.ended", ended(f"q{i}", "answered", f"2.{i}"))
    s = await until(lambda s: s.get(("cti_calls_offered_total", (("queue", "other"),))) == 80 - 64, web)
    assert len({k[1] for k in s if k[0] == "cti_calls_offered_total"}) == 65
