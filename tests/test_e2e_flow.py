"""End to end: the real daemon against the simulated PBX over real sockets, on the demo's data.

A caller dials the 800 line on the sim; the sim's dialplan asks cti over FastAGI, plays the greeting cti
chose, queues the caller with cti's queue and priority, rings an agent who pressed *Ready* in the console
(QueueAdd), and cti follows it all over AMI into its live state, the agent's websocket and the calls table.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cti.config import load_settings
from e2e_world import TTS, World, open_world, until

NEW_CALLER = "13912345678"  # not a demo customer


@pytest.fixture
async def world(settings, tmp_path: Path):
    """On SQLite and on PostgreSQL (``settings`` follows the ``db_url`` fixture)."""
    async for w in open_world(settings, tmp_path):
        yield w


@pytest.fixture
async def lite(tmp_path: Path):
    """SQLite only: for the scenarios whose database side the first test already covers on PostgreSQL."""
    s = load_settings(None, env={}).replace("database", url=f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}")
    s = s.replace("greeting", sounds_dir=str(tmp_path / "sounds"))
    async for w in open_world(s, tmp_path, greetings=False):
        yield w


def _single_line(line: str):
    return lambda p: p.fields["products"].count(":") == 2 and p.fields["products"].startswith(line) and not p.complaint


async def test_known_caller_lands_in_their_queue_with_a_personal_greeting_and_the_agent_gets_the_pop(world: World):
    person = world.customer(lambda p: _single_line("mobile")(p) and p.fields["language"] == "zh")
    customer_id = await world.customer_id(person)
    agent = await world.agent("mobile1")
    await agent.state("ready")  # QueueAdd mobile PJSIP/1001

    call = world.pbx.place_call(person.caller_number, person.caller_name, patience=600, talk_time=2)
    pop = await agent.next("screen_pop", timeout=20)
    assert call.queue == "mobile" and call.agi_status == "SUCCESS"
    assert call.variables["CTI_CUSTOMER_ID"] == str(customer_id) and call.variables["CTI_LANG"] == "zh"
    greeting = call.variables["CTI_GREETING"]
    if TTS:  # synthesized ahead of time: the sound the sim played is this customer's own
        assert greeting.startswith(f"cti/greet-{customer_id}-")
        assert (Path(world.settings.greeting.sounds_dir) / (greeting.split("/", 1)[1] + ".wav")).is_file()
    else:
        assert greeting == "cti/greet-generic-zh"
    assert pop["call"]["uniqueid"] == call.uniqueid and pop["call"]["interface"] == "PJSIP/1001"
    assert (pop["call"]["queue"], pop["call"]["route"]) == ("mobile", "product")
    assert pop["customer"]["id"] == customer_id and not pop["unknown_caller"]
    assert pop["customer"]["name"].startswith(person.fields["family_name"] + person.fields["given_name"])

    await agent.next("call_update", timeout=20, pred=lambda m: m["status"] == "connected")
    await call.wait("finished", timeout=20)
    row = await world.call_row(call.uniqueid, lambda r: r["outcome"] is not None)
    assert (row["outcome"], row["queue"], row["agent_interface"], row["customer_id"]) == \
        ("answered", "mobile", "PJSIP/1001", customer_id)
    await agent.ws.close()


async def test_unknown_caller_chooses_in_the_ivr_and_pops_as_a_new_caller(lite: World):
    agent = await lite.agent("appliances1")
    await agent.state("ready")
    call = lite.pbx.place_call(NEW_CALLER, "WIRELESS CALLER", ivr_digit="1", patience=600, talk_time=1)
    pop = await agent.next("screen_pop", timeout=20)
    # cti asked for the menu (CTI_ACTION=ivr), the sim played it, sent the digit back, cti routed on it
    assert [r.variables.get("CTI_ACTION") for r in call.agi_results] == ["ivr", "queue"]
    assert call.queue == "appliances" and call.variables["CTI_CUSTOMER_ID"] == ""
    assert call.variables["CTI_GREETING"] == "cti/greet-generic-zh"
    assert pop["call"]["uniqueid"] == call.uniqueid and pop["customer"] is None and pop["unknown_caller"]
    assert pop["new_customer"]["phones"] == "+8613912345678" and pop["call"]["ivr_choice"] == "1"
    await call.wait("finished", timeout=20)
    row = await lite.call_row(call.uniqueid, lambda r: r["outcome"] is not None)
    assert (row["outcome"], row["route"], row["customer_id"]) == ("answered", "ivr", None)


async def test_open_complaint_jumps_the_queue(lite: World):
    complainer = lite.customer(lambda p: p.complaint is not None and p.fields["vip"] == "no")
    first = lite.pbx.place_call(NEW_CALLER, "", ivr_digit="3", patience=600, talk_time=1)  # menu: complaints
    await first.wait("queued", timeout=20)
    second = lite.pbx.place_call(complainer.caller_number, complainer.caller_name, patience=600, talk_time=1)
    await second.wait("queued", timeout=20)
    assert (first.queue, first.priority) == ("complaints", 0)
    assert (second.queue, second.priority) == ("complaints", 10)

    def waiting() -> dict[str, int]:
        snap = lite.daemon.ami.state.queue_snapshot("complaints", 0) or {"waiting": []}
        return {w["uniqueid"]: w["priority"] for w in snap["waiting"]}
    # cti sees both waiting, with the priorities it decided
    assert await until(lambda: waiting() == {first.uniqueid: 0, second.uniqueid: 10})

    agent = await lite.agent("complaints1")
    await agent.state("ready")  # the only complaints agent: whoever rings first was served first
    pop = await agent.next("screen_pop", timeout=20)
    assert pop["call"]["uniqueid"] == second.uniqueid and pop["call"]["priority"] == 10
    assert pop["call"]["route"] == "complaint" and pop["open_complaints"][0]["description"] == complainer.complaint
    assert not first.reached("ringing")
    pop = await agent.next("screen_pop", timeout=20)  # then the caller who had waited longer
    assert pop["call"]["uniqueid"] == first.uniqueid and pop["customer"] is None
    await asyncio.gather(first.wait("finished", 20), second.wait("finished", 20))
    assert first.agent == second.agent == "PJSIP/3001"


async def test_abandoned_call_is_recorded_as_abandoned(lite: World):
    call = lite.pbx.place_call(NEW_CALLER, "", ivr_digit="2", patience=10)  # nobody in mobile
    await call.wait("finished", timeout=20)
    assert call.outcome == "abandoned"
    row = await lite.call_row(call.uniqueid, lambda r: r["outcome"] is not None)
    assert (row["outcome"], row["queue"], row["agent_interface"]) == ("abandoned", "mobile", None)
    assert row["wait_s"] is not None and row["talk_s"] in (None, 0)


async def test_ami_link_drop_resyncs_without_ghost_calls(lite: World):
    daemon, pbx = lite.daemon, lite.pbx
    links = daemon.bus.subscribe("ami.link", maxsize=100)
    gone = pbx.place_call(NEW_CALLER, "", ivr_digit="1", patience=600)  # nobody in appliances: waits
    await gone.wait("queued", timeout=20)
    await until(lambda: daemon.ami.state.calls.get(gone.uniqueid) is not None)

    await pbx.ami.stop()  # bare EOF, and nothing listens until the PBX is back
    await until(lambda: not daemon.ami.connected)
    gone.hangup()  # while cti is blind: it never sees this caller leave
    await gone.wait("finished", timeout=20)
    arrived = pbx.place_call("13987654321", "", ivr_digit="1", patience=600)  # joins while cti is blind
    await arrived.wait("queued", timeout=20)
    assert daemon.ami.state.calls.get(gone.uniqueid) is not None  # stale until the resync
    await pbx.ami.start()  # same port

    async def resynced() -> None:
        async for m in links:
            if m.payload["state"] == "resynced":
                return
    await asyncio.wait_for(resynced(), 20)
    assert daemon.ami.state.calls.get(gone.uniqueid) is None  # no ghost
    live = daemon.ami.state.calls.get(arrived.uniqueid)
    assert live is not None and live.queue == "appliances"
    snap = daemon.ami.state.queue_snapshot("appliances", 0)
    assert [w["uniqueid"] for w in snap["waiting"]] == [arrived.uniqueid]
    row = await lite.call_row(gone.uniqueid, lambda r: r["outcome"] is not None)
    assert row["outcome"] == "unknown" and row["ended_at"] is not None  # cti cannot know how it ended

    agent = await lite.agent("appliances1")  # the resynced caller is served and popped as usual
    await agent.state("ready")
    pop = await agent.next("screen_pop", timeout=20)
    assert pop["call"]["uniqueid"] == arrived.uniqueid


async def test_fastagi_down_the_dialplan_fallback_queues_the_call_in_appliances(lite: World):
    daemon, pbx = lite.daemon, lite.pbx
    await daemon.agi.close()  # cti's FastAGI port refuses connections; AMI and the console stay up
    agent = await lite.agent("appliances1")
    await agent.state("ready")
    person = lite.customer(_single_line("mobile"))  # would have gone to mobile
    call = pbx.place_call(person.caller_number, person.caller_name, patience=600, talk_time=1)
    await call.wait("queued", timeout=20)
    assert call.agi_status == "FAILURE" and call.queue == "appliances"
    assert call.variables["CTI_QUEUE"] == "appliances" and "CTI_CUSTOMER_ID" not in call.variables
    pop = await agent.next("screen_pop", timeout=20)  # a human still gets the caller
    assert pop["call"]["uniqueid"] == call.uniqueid and pop["call"]["queue"] == "appliances"
    await call.wait("finished", timeout=20)
    row = await lite.call_row(call.uniqueid, lambda r: r["outcome"] is not None)
    assert (row["outcome"], row["queue"], row["agent_interface"]) == ("answered", "appliances", "PJSIP/2001")
