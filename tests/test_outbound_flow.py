"""Follow-ups end to end on SQLite and PostgreSQL, dialed through AmiService on the simulated PBX:
merge, caps across the week, dealer visibility and credits, notes that cannot cross, a number
that changed hands, one Originate per dial, retries."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from cti.customers.scope import OutOfScope
from cti.db.tables import customer_phones, outbound_attempts, outbound_followups
from cti.outbound import repository as repo
from cti.outbound.rules import BusinessEvent
from cti.outbound.service import DialBlocked
from cti.sim.config import AgentConfig
from outbound_world import T0, SimWorld, wait_status


@pytest.fixture
async def world(engine):
    async with SimWorld(engine) as w:
        yield w


async def rows(w, table, *where):
    async with w.sm() as session:
        return (await session.execute(select(table).where(*where))).all()


async def test_two_rules_for_one_customer_make_one_followup_with_both_reasons(world) -> None:
    w = world
    cid = w.customers["zhang"]
    [a] = await w.svc.handle_event(BusinessEvent("repair.completed", cid, "RO-1", T0))
    [b] = await w.svc.handle_event(BusinessEvent("ticket.resolved", cid, "12", T0 + timedelta(hours=5)))
    [again] = await w.svc.handle_event(BusinessEvent("repair.completed", cid, "RO-1", T0))
    assert a.created and not b.created and b.followup_id == a.followup_id
    assert again.duplicate
    w.clock.advance(days=3)
    p = await w.svc.preview(w.accounts["alice"], a.followup_id)
    assert p["followup"]["reasons"] == ["repair check", "complaint resolved: is the customer satisfied"]
    # the earliest due time wins: the ticket rule (2 days after T0+5h)
    assert p["followup"]["due_at"] == T0 + timedelta(days=2, hours=5)
    assert len(await rows(w, outbound_followups)) == 1


async def test_repair_call_lead_for_the_dealer_and_no_second_call_that_week(world) -> None:
    w = world
    alice, zhang = w.accounts["alice"], w.customers["zhang"]
    [res] = await w.svc.handle_event(BusinessEvent("repair.completed", zhang, "RO-7", T0))
    with pytest.raises(DialBlocked) as blocked:
        await w.svc.dial(alice, res.followup_id)
    assert blocked.value.decision.codes == ("not_due",)
    w.clock.advance(days=3)
    [nxt] = await w.svc.next_for(alice)
    assert nxt["followup"]["id"] == res.followup_id and nxt["phones"][0]["allowed"]
    dial = await w.svc.dial(alice, res.followup_id)
    assert dial["customer_id"] == zhang and dial["phone"] == w.phones["zhang"]
    assert await wait_status(w.sm, dial["attempt_id"], "connected", "failed") == "connected"
    out = await w.svc.record_outcome(alice, dial["attempt_id"], "reached", notes="excavator runs fine",
                                     new_need="wants a second excavator")
    assert out["followup_status"] == "done" and out["lead_id"]
    # the dealer sees the lead, credited to them and to the agent who found it
    async with w.sm() as session:
        [lead] = await repo.list_leads(await session.connection(), dealer="D-SH-01")
        assert await repo.list_leads(await session.connection(), dealer="D-BJ-02") == []
    assert lead["customer_id"] == zhang and lead["need"] == "wants a second excavator"
    assert {(c["party_kind"], c["party"]): c["share"] for c in lead["credits"]} == pytest.approx(
        {("dealer", "D-SH-01"): 0.6, ("agent", "alice"): 0.2, ("call_center", "call_center"): 0.2})
    # a second rule the same week: a new follow-up, but the contact cap blocks the call
    w.clock.advance(days=1)
    [second] = await w.svc.handle_event(BusinessEvent("ticket.resolved", zhang, "99", w.clock.now - timedelta(days=2)))
    assert second.created
    with pytest.raises(DialBlocked) as blocked:
        await w.svc.dial(alice, second.followup_id)
    assert blocked.value.decision.codes == ("contact_cap",)
    assert "1 per 7 days" in str(blocked.value)
    assert len(await rows(w, outbound_attempts)) == 1  # no second Originate
    w.clock.advance(days=5, hours=23)
    assert not (await w.svc.preview(alice, second.followup_id))["phones"][0]["allowed"]
    w.clock.advance(hours=1)  # 7 days after the contact
    assert (await w.svc.preview(alice, second.followup_id))["phones"][0]["allowed"]


async def test_two_agents_at_once_never_cross_their_notes(world) -> None:
    w = world
    alice, bob = w.accounts["alice"], w.accounts["bob"]
    fa = (await w.svc.create(w.customers["zhang"], "repair check", due_at=T0)).followup_id
    fb = (await w.svc.create(w.customers["li"], "purchase check", due_at=T0)).followup_id
    da, db = await asyncio.gather(w.svc.dial(alice, fa), w.svc.dial(bob, fb))
    await asyncio.gather(wait_status(w.sm, da["attempt_id"], "connected"), wait_status(w.sm, db["attempt_id"], "connected"))
    # bob's console cannot write on alice's call
    with pytest.raises(repo.Forbidden):
        await w.svc.record_outcome(bob, da["attempt_id"], "reached", notes="bob's note")
    await asyncio.gather(
        w.svc.record_outcome(alice, da["attempt_id"], "reached", notes="note for Zhang", new_need="loader"),
        w.svc.record_outcome(bob, db["attempt_id"], "reached", notes="note for Li", new_need="crane"))
    got = {r.notes: (r.customer_id, r.followup_id, r.agent_id, r.phone_e164) for r in await rows(w, outbound_attempts)}
    assert got == {"note for Zhang": (w.customers["zhang"], fa, alice.id, w.phones["zhang"]),
                   "note for Li": (w.customers["li"], fb, bob.id, w.phones["li"])}
    async with w.sm() as session:
        leads = await repo.list_leads(await session.connection())
    assert {(lead["need"], lead["customer_id"], lead["dealer"]) for lead in leads} == {
        ("loader", w.customers["zhang"], "D-SH-01"), ("crane", w.customers["li"], "D-BJ-02")}
    with pytest.raises(repo.Conflict):
        await w.svc.record_outcome(alice, da["attempt_id"], "refused")


async def test_a_number_that_changed_hands_since_the_preview_is_not_dialed(world) -> None:
    """The old failure: the note landed on whoever the dialed number belonged to. Now the dial is refused."""
    w = world
    alice = w.accounts["alice"]
    fid = (await w.svc.create(w.customers["zhang"], "repair check", due_at=T0)).followup_id
    preview = await w.svc.preview(alice, fid)
    number = preview["phones"][0]["e164"]
    async with w.sm() as session, session.begin():  # meanwhile the number is moved to Li
        await session.execute(update(customer_phones).where(customer_phones.c.e164 == number)
                              .values(customer_id=w.customers["li"]))
    with pytest.raises(DialBlocked) as blocked:
        await w.svc.dial(alice, fid, number)
    assert blocked.value.decision.codes == ("wrong_customer_phone",)
    assert await rows(w, outbound_attempts) == []
    # and a number of another customer typed into the request is refused the same way
    fid_li = (await w.svc.create(w.customers["li"], "purchase check", due_at=T0)).followup_id
    with pytest.raises(DialBlocked) as blocked:
        await w.svc.dial(alice, fid_li, w.phones["zhao"])
    assert blocked.value.decision.codes == ("wrong_customer_phone",)


async def test_a_double_click_sends_one_originate(world) -> None:
    w = world
    alice = w.accounts["alice"]
    fid = (await w.svc.create(w.customers["zhao"], "survey", due_at=T0)).followup_id
    results = await asyncio.gather(w.svc.dial(alice, fid), w.svc.dial(alice, fid), return_exceptions=True)
    ok = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(ok) == 1 and len(refused) == 1
    assert isinstance(refused[0], (repo.Conflict, DialBlocked)), refused[0]
    attempts = await rows(w, outbound_attempts)
    assert len(attempts) == 1 and attempts[0].action_id == ok[0]["action_id"]


async def test_opt_out_blocks_and_says_who_and_when(world) -> None:
    w = world
    alice = w.accounts["alice"]
    fid = (await w.svc.create(w.customers["zhang"], "repair check", due_at=T0)).followup_id
    d = await w.svc.dial(alice, fid)
    await wait_status(w.sm, d["attempt_id"], "connected")
    await w.svc.record_outcome(alice, d["attempt_id"], "refused", notes="do not call me again", opt_out=True)
    w.clock.advance(days=60)
    fid2 = (await w.svc.create(w.customers["zhang"], "purchase check", due_at=w.clock.now)).followup_id
    with pytest.raises(DialBlocked) as blocked:
        await w.svc.dial(alice, fid2)
    assert blocked.value.decision.codes == ("opted_out",)
    assert "2026-11-24 10:00 CST (recorded by alice" in str(blocked.value)


async def test_no_answer_backs_off_then_gives_up(world) -> None:
    w = world
    alice = w.accounts["alice"]
    fid = (await w.svc.create(w.customers["li"], "repair check", due_at=T0)).followup_id
    for n in range(3):
        d = await w.svc.dial(alice, fid)
        await wait_status(w.sm, d["attempt_id"], "connected")
        out = await w.svc.record_outcome(alice, d["attempt_id"], "no_answer")
        if n < 2:
            assert out["followup_status"] == "open"
            with pytest.raises(DialBlocked) as blocked:
                await w.svc.dial(alice, fid)
            assert blocked.value.decision.codes == ("retry_wait",)
            w.clock.advance(hours=2 if n == 0 else 24)
    assert out["followup_status"] == "exhausted"
    [fu] = await rows(w, outbound_followups)
    assert (fu.status, fu.attempts, fu.open_customer_id) == ("exhausted", 3, None)
    # no-answers are not contacts: a new follow-up may be dialed at once
    fid2 = (await w.svc.create(w.customers["li"], "purchase check", due_at=w.clock.now)).followup_id
    assert (await w.svc.preview(alice, fid2))["phones"][0]["allowed"]


async def test_dealer_contacts_see_only_their_own_customers(world) -> None:
    w = world
    fz = (await w.svc.create(w.customers["zhang"], "repair check", due_at=T0)).followup_id
    fl = (await w.svc.create(w.customers["li"], "repair check", due_at=T0)).followup_id
    await w.svc.create(w.customers["zhao"], "repair check", due_at=T0)
    mine = await w.svc.next_for(w.accounts["dealer1"])
    assert [p["followup"]["id"] for p in mine] == [fz]
    assert [p["followup"]["id"] for p in await w.svc.next_for(w.accounts["dealer2"])] == [fl]
    with pytest.raises(OutOfScope):  # the customer scope's refusal (cti/customers/scope.py)
        await w.svc.preview(w.accounts["dealer1"], fl)
    with pytest.raises(repo.Forbidden):
        await w.svc.dial(w.accounts["dealer1"], fz)
    assert len(await w.svc.next_for(w.accounts["alice"])) == 3


@pytest.fixture
async def deaf_world(engine):
    agents = (AgentConfig("PJSIP/1001", "Li Na", ("mobile",), noanswer=True),)
    async with SimWorld(engine, agents=agents) as w:
        yield w


async def test_agent_phone_not_answering_frees_the_followup_without_counting(deaf_world) -> None:
    w = deaf_world
    alice = w.accounts["alice"]
    fid = (await w.svc.create(w.customers["zhang"], "repair check", due_at=T0)).followup_id
    w.svc.originate_timeout_ms = 2000
    d = await w.svc.dial(alice, fid)
    assert await wait_status(w.sm, d["attempt_id"], "connected", "failed", timeout=30) == "failed"
    [fu] = await rows(w, outbound_followups)
    assert (fu.pending_attempt_id, fu.attempts) == (None, 0)
    assert (await w.svc.preview(alice, fid))["phones"][0]["allowed"]


async def test_rules_firing_at_the_same_moment_still_make_one_followup(world) -> None:
    w = world
    cid = w.customers["zhao"]
    events = [BusinessEvent(kind, cid, str(n), T0) for n, kind in
              enumerate(("repair.completed", "ticket.resolved", "product.purchased", "call.callback_requested"))]
    await asyncio.gather(*(w.svc.handle_event(e) for e in events))
    [fu] = await rows(w, outbound_followups)
    p = await w.svc.preview(w.accounts["alice"], fu.id)
    assert len(p["followup"]["reasons"]) == 4 and p["followup"]["due_at"] == T0  # the call-back is due at once


async def test_a_merge_moves_the_due_time_earlier_never_later(world) -> None:
    w = world
    cid = w.customers["li"]
    first = await w.svc.create(cid, "purchase check", due_at=T0 + timedelta(days=5))
    await w.svc.create(cid, "repair check", due_at=T0 + timedelta(days=2))
    await w.svc.create(cid, "survey", due_at=T0 + timedelta(days=9))
    [fu] = await rows(w, outbound_followups)
    assert (fu.id, fu.due_at) == (first.followup_id, T0 + timedelta(days=2))


async def test_a_dial_while_the_pbx_link_is_down_fails_cleanly_and_is_not_retried(world) -> None:
    w = world
    alice = w.accounts["alice"]
    fid = (await w.svc.create(w.customers["zhang"], "repair check", due_at=T0)).followup_id
    await w.ami.link.stop()
    with pytest.raises(repo.OutboundError, match="could not be placed"):
        await w.svc.dial(alice, fid)
    [att] = await rows(w, outbound_attempts)
    [fu] = await rows(w, outbound_followups)
    assert (att.status, att.action_id, fu.pending_attempt_id, fu.attempts) == ("failed", None, None, 0)
    assert (await w.svc.preview(alice, fid))["phones"][0]["allowed"]


async def test_lost_pbx_answers_and_forgotten_forms_do_not_block_a_customer_forever(world) -> None:
    w = world
    alice = w.accounts["alice"]
    fid = (await w.svc.create(w.customers["li"], "repair check", due_at=T0)).followup_id
    d = await w.svc.dial(alice, fid)
    await wait_status(w.sm, d["attempt_id"], "connected")
    # the agent never sends the outcome form
    w.clock.advance(hours=1)
    assert (await w.svc.preview(alice, fid))["phones"][0]["blocked"][0]["code"] == "dial_in_progress"
    w.clock.advance(hours=1, minutes=1)
    await w.svc.release_stale()
    assert (await w.svc.preview(alice, fid))["phones"][0]["allowed"]
    d2 = await w.svc.dial(alice, fid)
    assert d2["attempt_id"] != d["attempt_id"]
    # the late form is still accepted, on its own customer
    out = await w.svc.record_outcome(alice, d["attempt_id"], "reached", notes="late form")
    assert out["customer_id"] == w.customers["li"]
    # a dial the PBX never confirmed is failed by the sweep: the sim's answer to d2 is waited for first
    # (it is asynchronous and would otherwise overwrite the forced status), then d2 is made unconfirmed
    await wait_status(w.sm, d2["attempt_id"], "connected", "failed")
    async with w.sm() as session, session.begin():
        await session.execute(update(outbound_attempts).where(outbound_attempts.c.id == d2["attempt_id"])
                              .values(status="queued"))
    w.clock.advance(minutes=5)
    assert await w.svc.release_stale() == 1
    [a2] = await rows(w, outbound_attempts, outbound_attempts.c.id == d2["attempt_id"])
    assert a2.status == "failed"


async def test_customer_hours_and_zone_from_the_database_and_wrong_numbers_are_not_called_again(world) -> None:
    w = world
    alice = w.accounts["alice"]
    async with w.sm() as session, session.begin():
        conn = await session.connection()
        await repo.set_preferences(conn, w.customers["li"], timezone_name="Asia/Shanghai",
                                   hours={str(d): "14:00-18:00" for d in range(7)}, now=T0)
        with pytest.raises(repo.OutboundError, match="timezone"):
            await repo.set_preferences(conn, w.customers["li"], timezone_name="Moon/Base", hours=None, now=T0)
    fid = (await w.svc.create(w.customers["li"], "repair check", due_at=T0)).followup_id
    with pytest.raises(DialBlocked) as blocked:
        await w.svc.dial(alice, fid)
    assert blocked.value.decision.codes == ("customer_hours",)
    assert "allowed 14:00-18:00" in str(blocked.value)
    w.clock.advance(hours=5)  # 15:00 in Shanghai
    d = await w.svc.dial(alice, fid)
    await wait_status(w.sm, d["attempt_id"], "connected")
    await w.svc.record_outcome(alice, d["attempt_id"], "wrong_number", notes="a restaurant answered")
    fid2 = (await w.svc.create(w.customers["li"], "purchase check", due_at=w.clock.now)).followup_id
    with pytest.raises(DialBlocked) as blocked:
        await w.svc.dial(alice, fid2)
    assert blocked.value.decision.codes == ("number_opted_out",)
