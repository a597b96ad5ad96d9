"""The outbound contact policy, rules and credits: pure functions, a clock the test controls."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cti.outbound.attribution import CreditRules, credit_lead
from cti.outbound.policy import Cap, ContactPolicy, DialContext, OptOut, after_no_answer, check_dial, policy_from_mapping
from cti.outbound.rules import DEFAULT_RULES, BusinessEvent, requests_for, ticket_event

UTC = timezone.utc
# Tuesday 2026-11-24 10:00 in Shanghai (02:00 UTC)
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
POLICY = ContactPolicy()

BASE = DialContext(followup_id=1, customer_id=7, status="open", due_at=NOW - timedelta(hours=1),
                   reasons=("repair check",), attempts=0, next_attempt_at=None,
                   phone_e164="+8613800138000", phone_owner_id=7)


def days(n: float) -> timedelta:
    return timedelta(days=n)


CASES = [
    ("clean", {}, ()),
    ("one contact 3 days ago hits 1 per 7 days", {"contacts": (NOW - days(3),)}, ("contact_cap",)),
    ("one contact 8 days ago is fine", {"contacts": (NOW - days(8),)}, ()),
    ("three contacts in 30 days hit both caps", {"contacts": (NOW - days(25), NOW - days(15), NOW - days(2))},
     ("contact_cap", "contact_cap")),
    ("three contacts in 30 days, last 8 days ago", {"contacts": (NOW - days(25), NOW - days(15), NOW - days(8))},
     ("contact_cap",)),
    ("customer opted out", {"opt_outs": (OptOut(NOW - days(40), "li.na", "asked on the phone"),)}, ("opted_out",)),
    ("this number opted out", {"opt_outs": (OptOut(NOW - days(1), "li.na", e164="+8613800138000"),)},
     ("number_opted_out",)),
    ("another number opted out", {"opt_outs": (OptOut(NOW - days(1), "li.na", e164="+8613900000000"),)}, ()),
    ("not due yet", {"due_at": NOW + timedelta(hours=2)}, ("not_due",)),
    ("closed", {"status": "done"}, ("not_open",)),
    ("retry wait", {"attempts": 1, "next_attempt_at": NOW + timedelta(minutes=30)}, ("retry_wait",)),
    ("retry time passed", {"attempts": 1, "next_attempt_at": NOW - timedelta(minutes=1)}, ()),
    ("attempts exhausted", {"attempts": 3}, ("attempts_exhausted",)),
    ("phone moved to another customer", {"phone_owner_id": 8}, ("wrong_customer_phone",)),
    ("phone deleted", {"phone_owner_id": None}, ("wrong_customer_phone",)),
    ("no phone", {"phone_e164": None, "phone_owner_id": None}, ("no_phone",)),
    ("a dial in progress", {"dial_in_progress": True}, ("dial_in_progress",)),
    # 10:00 in Shanghai is 02:00 in London
    ("customer abroad at night", {"customer_timezone": "Europe/London"}, ("customer_hours",)),
    ("customer only afternoons", {"customer_hours": {str(d): "14:00-18:00" for d in range(7)}}, ("customer_hours",)),
    ("customer never on Tuesdays", {"customer_hours": {"0": "09:00-18:00"}}, ("customer_hours",)),
]


@pytest.mark.parametrize("name,changes,codes", CASES, ids=[c[0] for c in CASES])
def test_dial_policy(name, changes, codes) -> None:
    decision = check_dial(replace(BASE, **changes), POLICY, NOW)
    assert decision.codes == codes
    assert decision.allowed == (not codes)


def test_a_blocked_dial_says_why_and_when() -> None:
    d = check_dial(replace(BASE, contacts=(NOW - days(3),)), POLICY, NOW)
    assert "1 per 7 days" in d.explain() and "allowed again from 2026-11-28 10:00 CST" in d.explain()
    d = check_dial(replace(BASE, opt_outs=(OptOut(datetime(2026, 10, 1, 1, 0, tzinfo=UTC), "li.na", "rude"),)),
                   POLICY, NOW)
    assert d.explain() == "the customer opted out of calls on 2026-10-01 09:00 CST (recorded by li.na: rude)"


@pytest.mark.parametrize("local,open_", [("08:59", False), ("09:00", True), ("19:59", True), ("20:00", False)])
def test_call_center_hours(local, open_) -> None:
    h, m = map(int, local.split(":"))
    now = datetime(2026, 11, 24, h, m, tzinfo=timezone(timedelta(hours=8))).astimezone(UTC)
    policy = replace(POLICY, customer_hours={str(d): "00:00-23:59" for d in range(7)})
    assert ("center_hours" not in check_dial(BASE, policy, now).codes) == open_


def test_caps_per_reason_replace_the_default_and_all_apply_when_merged() -> None:
    policy = replace(POLICY, caps_by_reason={"callback": (Cap(3, 1),), "survey": (Cap(1, 90),)})
    recent = replace(BASE, contacts=(NOW - days(3),))
    assert check_dial(replace(recent, reasons=("callback",)), policy, NOW).allowed
    assert check_dial(replace(recent, reasons=("callback", "survey")), policy, NOW).codes == ("contact_cap",)
    assert policy.caps_for(["repair check"]) == POLICY.caps


def test_retries_back_off_then_stop() -> None:
    assert after_no_answer(1, POLICY, NOW) == NOW + timedelta(hours=2)
    assert after_no_answer(2, POLICY, NOW) == NOW + timedelta(hours=24)
    assert after_no_answer(3, POLICY, NOW) is None
    longer = replace(POLICY, max_attempts=5)
    assert after_no_answer(4, longer, NOW) == NOW + timedelta(hours=24)  # the last back-off repeats


def test_policy_from_toml_table() -> None:
    p = policy_from_mapping({"caps": [{"count": 2, "days": 14}], "max_attempts": 4, "retry_backoff_minutes": [30],
                             "caps_by_reason": {"callback": [{"count": 5, "days": 1}]}})
    assert p.caps == (Cap(2, 14),) and p.max_attempts == 4 and p.retry_backoff == (timedelta(minutes=30),)
    with pytest.raises(ValueError, match="center_timezone"):
        policy_from_mapping({"center_timezone": "Mars/Base"})
    with pytest.raises(ValueError, match="center_hours"):
        policy_from_mapping({"center_hours": {"0": "18:00-09:00"}})


def test_rules_fire_after_their_delay_once_per_event() -> None:
    repair = BusinessEvent("repair.completed", 7, "RO-1", NOW)
    [req] = requests_for(repair, DEFAULT_RULES)
    assert (req.customer_id, req.reason, req.due_at) == (7, "repair check", NOW + days(3))
    assert req.source_key == "repair-check:repair.completed:RO-1"
    assert requests_for(BusinessEvent("unknown.kind", 7, "x", NOW), DEFAULT_RULES) == []
    ev = ticket_event({"action": "resolve", "customer_id": 7, "ticket_id": 12}, NOW)
    assert ev is not None and ev.kind == "ticket.resolved" and ev.key == "12"
    assert ticket_event({"action": "answer", "customer_id": 7, "ticket_id": 12}, NOW) is None
    # the delay counts from the resolution, however late the bus delivers it
    late = ticket_event({"action": "resolve", "customer_id": 7, "ticket_id": 12, "at": (NOW - days(1)).timestamp()}, NOW)
    assert late is not None and late.at == NOW - days(1)


CREDITS = [
    ("dealer's customer found by an agent", "D-SH-01", "li.na", False,
     {("dealer", "D-SH-01"): 0.6, ("agent", "li.na"): 0.2, ("call_center", "call_center"): 0.2}),
    ("dealer's customer found by an expert", "D-SH-01", "wang.gong", True,
     {("dealer", "D-SH-01"): 0.6, ("agent", "wang.gong"): 0.3, ("call_center", "call_center"): 0.1}),
    ("no dealer", None, "li.na", False, {("agent", "li.na"): 0.2, ("call_center", "call_center"): 0.8}),
    ("nobody named", None, None, False, {("call_center", "call_center"): 1.0}),
]


@pytest.mark.parametrize("name,dealer,finder,expert,expected", CREDITS, ids=[c[0] for c in CREDITS])
def test_lead_credits(name, dealer, finder, expert, expected) -> None:
    got = {(c.party_kind, c.party): c.share for c in credit_lead(dealer, finder, expert)}
    assert got == pytest.approx(expected)


def test_a_dealer_always_keeps_their_share_even_at_full_finder_share() -> None:
    rules = CreditRules(dealer_share=0.5, finder_share=0.5, expert_share=0.5)
    got = {c.party_kind: c.share for c in credit_lead("D1", "x", True, rules)}
    assert got == {"dealer": 0.5, "agent": 0.5}
    with pytest.raises(ValueError):
        CreditRules(dealer_share=0.8, expert_share=0.3)


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.booleans(), st.booleans(), st.booleans())
def test_credit_shares_always_add_up_to_one(d, f, e, has_dealer, has_finder, expert) -> None:
    if d + max(f, e) > 1:
        return
    credits = credit_lead("D1" if has_dealer else None, "x" if has_finder else None, expert, CreditRules(d, f, e))
    assert sum(c.share for c in credits) == pytest.approx(1.0)
    assert all(c.share > 0 for c in credits)


def test_max_contacts_in_any_window() -> None:
    from cti.outbound.reports import max_in_window

    t = [NOW + days(d) for d in (0, 1, 6.9, 7, 20)]
    assert max_in_window(t, days(7)) == 3  # (0, 1, 6.9); at day 7 the contact of day 0 is out
    assert max_in_window([], days(7)) == 0
    assert max_in_window(t, days(30)) == 5
