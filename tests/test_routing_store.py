"""Routing rules documents: validation naming the field, holidays in the pure router, versions and rollback
on SQLite and the real PostgreSQL."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest

from cti.config import RoutingConfig
from cti.db.engine import sessionmaker
from cti.routing import store
from cti.routing.rules import CallerFacts, RoutingRules, resolve_route
from cti.web.crosssell import load_rules

# Tuesday 2026-11-24 10:00 in Shanghai (02:00 UTC): inside the default hours
TUESDAY_10 = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)


def base() -> dict:
    return store.document_from_config(RoutingConfig(dids={"400-800-1234": "mobile"}), load_rules(None))


def test_the_file_config_document_is_valid_and_routes_like_the_config() -> None:
    valid = store.validate(base())
    from_cfg = RoutingRules.from_config(RoutingConfig(dids={"400-800-1234": "mobile"}))
    assert valid.routing.dids == from_cfg.dids == {"4008001234": "mobile"}
    assert valid.routing.hours == from_cfg.hours and valid.routing.ivr == from_cfg.ivr
    assert [r.id for r in valid.crosssell] == [r.id for r in load_rules(None)]
    for dialed in ("4008001234", "4008009999", ""):
        expected = resolve_route(None, dialed, from_cfg, TUESDAY_10)
        assert resolve_route(None, dialed, valid.routing, TUESDAY_10) == expected


@pytest.mark.parametrize("change, field", [
    ({"dids": {"4008001234": "nosuchqueue"}}, "dids.4008001234"),
    ({"dids": {"abc": "mobile"}}, "dids.abc"),
    ({"ivr": {"12345": "mobile"}}, "ivr.12345"),
    ({"ivr": {"4": "sales"}}, "ivr.4"),
    ({"default_queue": "sales"}, "default_queue"),
    ({"afterhours_queue": "nope"}, "afterhours_queue"),
    ({"queues": ["appliances", "mobile"]}, "queues"),
    ({"queues": ["appliances", "appliances", "complaints"]}, "queues"),
    ({"queues": "appliances"}, "queues"),
    ({"hours": {"3": "20:00-08:00"}}, "hours.3"),
    ({"hours": {"9": "08:00-20:00"}}, "hours.9"),
    ({"hours": {"1": "8 to 5"}}, "hours.1"),
    ({"holidays": ["2026-13-01"]}, "holidays[0]"),
    ({"holidays": ["2026-10-01", "2026-10-01"]}, "holidays[1]"),
    ({"holidays": "2026-10-01"}, "holidays"),
    ({"vip_priority": -1}, "vip_priority"),
    ({"complaint_priority": "10"}, "complaint_priority"),
    ({"base_priority": True}, "base_priority"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"default_language": "fr"}, "default_language"),
    ({"product_queues": {"mobile": "phones"}}, "product_queues.mobile"),
    ({"crosssell": [{"id": "x", "owns_model": [], "offer_zh": "a", "offer_en": "b"}]}, "crosssell[0]"),
    ({"crosssell": [{"id": "x", "owns_model": "m", "offer_zh": "a"}]}, "crosssell[0]"),
    ({"surprise": 1}, "surprise"),
])
def test_validation_names_the_bad_field(change: dict, field: str) -> None:
    doc = base()
    doc.update(change)
    with pytest.raises(store.RulesInvalid) as exc:
        store.validate(doc)
    assert field in [e.field for e in exc.value.errors], exc.value.errors


def test_every_bad_field_is_reported_at_once_and_a_missing_field_is_named() -> None:
    doc = base()
    doc.update(default_queue="x", vip_priority="high")
    del doc["timezone"]
    with pytest.raises(store.RulesInvalid) as exc:
        store.validate(doc)
    assert [e.field for e in exc.value.errors] == ["timezone"]  # shape first
    doc["timezone"] = "Asia/Shanghai"
    with pytest.raises(store.RulesInvalid) as exc:
        store.validate(doc)
    assert {e.field for e in exc.value.errors} == {"default_queue", "vip_priority"}


@pytest.mark.parametrize("holidays, when_utc, action", [
    ([], TUESDAY_10, "queue"),
    (["2026-11-24"], TUESDAY_10, "afterhours"),  # closed all day
    (["2026-11-25"], TUESDAY_10, "queue"),  # another day
    # 2026-11-24 17:00 UTC is already 2026-11-25 01:00 in Shanghai: the local date decides
    (["2026-11-24"], datetime(2026, 11, 24, 17, 0, tzinfo=timezone.utc), "afterhours"),
    (["2026-11-25"], datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc), "afterhours"),
    (["2026-11-24"], datetime(2026, 11, 23, 15, 58, tzinfo=timezone.utc), "queue"),  # Monday 23:58: open
])
def test_holidays_route_like_after_hours(holidays: list[str], when_utc: datetime, action: str) -> None:
    doc = base()
    doc["holidays"] = holidays
    doc["hours"] = {str(d): "00:00-23:59" if d == 0 else "08:00-20:30" for d in range(7)}
    rules = store.validate(doc).routing
    vip = CallerFacts(customer_id=1, vip=True)
    d = resolve_route(vip, "4008001234", rules, when_utc)
    assert d.action == action
    if action == "afterhours":
        assert (d.route, d.priority) == ("afterhours", rules.vip_priority)
    else:
        assert (d.queue, d.route) == ("mobile", "did")


async def test_versions_save_activate_and_rollback(engine) -> None:
    sm = sessionmaker(engine)
    assert await store.active(sm) is None and await store.versions(sm) == []
    assert await store.active_rules(sm) is None
    v1, _ = await store.save(sm, base(), created_by="adam", comment="first")
    doc2 = copy.deepcopy(base())
    doc2["dids"] = {"4008001234": "appliances"}
    v2, valid2 = await store.save(sm, doc2, created_by="adam", comment="DID to appliances")
    assert (v1.version, v2.version) == (1, 2)
    assert valid2.routing.dids == {"4008001234": "appliances"}
    act = await store.active(sm)
    assert act is not None and act.version == 2 and act.document["dids"] == {"4008001234": "appliances"}
    listed = await store.versions(sm)
    assert [(v.version, v.active, v.comment) for v in listed] == [(2, True, "DID to appliances"), (1, False, "first")]

    bad = copy.deepcopy(base())
    bad["ivr"] = {"1": "nowhere"}
    with pytest.raises(store.RulesInvalid):
        await store.save(sm, bad, created_by="adam")
    assert [v.version for v in await store.versions(sm)] == [2, 1]  # nothing stored

    back = await store.activate(sm, 1)
    assert back is not None and back[0].version == 1 and back[1].routing.dids == {"4008001234": "mobile"}
    assert [(v.version, v.active) for v in await store.versions(sm)] == [(2, False), (1, True)]
    loaded = await store.active_rules(sm)
    assert loaded is not None and loaded.routing.dids == {"4008001234": "mobile"}
    assert await store.activate(sm, 99) is None
    v3, _ = await store.save(sm, doc2, created_by="adam")
    assert v3.version == 3 and [v.active for v in await store.versions(sm)] == [True, False, False]
