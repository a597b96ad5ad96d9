"""The escalation path from the org chart (pure): managers, inactive people, loops, outsiders."""

from __future__ import annotations

from cti.tickets.org import OrgChart, Person


def person(agent_id, manager_id=None, *, active=True, engineer=False, product_line=None):
    return Person(agent_id, f"u{agent_id}", "", "agent", active, manager_id, "", product_line, engineer, None, None)


def chart(*people):
    return OrgChart({p.agent_id: p for p in people})


def test_next_level_is_the_manager_and_none_at_the_top():
    c = chart(person(1, 2), person(2, 3), person(3))
    assert [c.escalation_target(a) for a in (1, 2, 3)] == [2, 3, None]
    assert c.chain(1) == [2, 3] and c.team_of(3) == {1, 2} and c.manages(3, 1) and not c.manages(1, 3)


def test_an_inactive_manager_is_skipped():
    c = chart(person(1, 2), person(2, 3, active=False), person(3))
    assert c.escalation_target(1) == 3


def test_a_manager_loop_in_stored_data_ends():
    c = chart(person(1, 2), person(2, 1))
    assert c.chain(1) == [2]
    assert c.escalation_target(2) == 1  # no endless walk


def test_owner_outside_the_chart_goes_to_the_top_of_its_product_line():
    c = chart(person(1, 2, product_line="mobile"), person(2, product_line="mobile"), person(5, product_line="appliances"))
    assert c.escalation_target(99, "mobile") == 2
    assert c.escalation_target(None, "appliances") == 5
    assert c.escalation_target(2, "mobile") is None


def test_engineers_and_front_line_by_product_line():
    c = chart(person(1, 3, engineer=True, product_line="mobile"), person(2, 3, engineer=True), person(3, engineer=True),
              person(4, 6, product_line="mobile"), person(5, 6, product_line="appliances"), person(6))
    assert [p.agent_id for p in c.engineers_for("mobile")] == [1, 2, 3]
    assert [p.agent_id for p in c.engineers_for("office")] == [2, 3]
    assert [p.agent_id for p in c.responsible_for("mobile")] == [4, 6]
