"""The demo's people: every title agrees with the person's sex and given name, names are distinct,
several customers qualify for a cross-sell offer (issue 18, item 8)."""

from __future__ import annotations

from datetime import date

from cti.customers.records import customer_from_fields
from cti.demo.data import ZH_TITLE, _ZH_GIVEN, demo_customers
from cti.web.crosssell import load_rules, suggest

EN_TITLES = {"male": {"Mr.", "Dr."}, "female": {"Ms.", "Mrs.", "Dr."}}


def test_every_demo_customer_has_a_sex_its_title_and_given_name_agree_with():
    people = demo_customers()
    for p in people:
        f = p.fields
        assert p.sex in ("male", "female"), f
        if f["language"] == "zh":
            assert f["title"] == ZH_TITLE[p.sex], f
            assert f["given_name"] in _ZH_GIVEN[p.sex], f
            assert f["given_name"] not in _ZH_GIVEN["female" if p.sex == "male" else "male"], f
        else:
            assert f["title"] in EN_TITLES[p.sex], f
    names = [(p.fields["family_name"], p.fields["given_name"]) for p in people]
    assert len(set(names)) == len(names), "two demo customers share a name"


def test_several_demo_customers_qualify_for_cross_sell_including_one_with_an_open_complaint():
    rules, today = load_rules(None), date.today()

    def offer(p):
        r = customer_from_fields(p.fields, "CN")
        return suggest([{"product_line": x.product_line, "model": x.model, "purchased_on": x.purchased_on}
                        for x in r.products], rules, today)

    people = demo_customers(today=today)
    assert sum(1 for p in people if offer(p) and not p.complaint) >= 3
    assert any(offer(p) for p in people if p.complaint)
