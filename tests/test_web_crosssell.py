"""Cross-sell rules: the packaged file, a custom file through the config, and the matcher's cases."""

from __future__ import annotations

from datetime import date

import pytest

from cti.web.crosssell import RuleError, load_rules, parse_rules, suggest

TODAY = date(2026, 11, 23)
RULES = load_rules(None)


@pytest.mark.parametrize("products,expected", [
    ([{"product_line": "appliances", "model": "美的微波炉 M3", "purchased_on": date(2026, 10, 1)}],
     "rice-cooker-for-new-microwave"),
    ([{"product_line": "appliances", "model": "Microwave MW-20", "purchased_on": "2026-11-01"}],
     "rice-cooker-for-new-microwave"),
    # already owns a rice cooker
    ([{"product_line": "appliances", "model": "美的微波炉 M3", "purchased_on": date(2026, 10, 1)},
      {"product_line": "appliances", "model": "智能电饭煲 R5", "purchased_on": date(2025, 1, 1)}], None),
    # the microwave is old
    ([{"product_line": "appliances", "model": "美的微波炉 M3", "purchased_on": date(2024, 1, 1)}], None),
    # no purchase date: not "new"
    ([{"product_line": "appliances", "model": "美的微波炉 M3", "purchased_on": None}], None),
    ([{"product_line": "mobile", "model": "Phone X", "purchased_on": date(2026, 11, 1)}], "phone-case-for-new-phone"),
    ([], None),
])
def test_packaged_rules(products, expected):
    s = suggest(products, RULES, TODAY)
    assert (s["id"] if s else None) == expected
    if s:
        assert s["zh"] and s["en"]


def test_custom_rules_file_through_the_config(tmp_path, settings):
    path = tmp_path / "rules.toml"
    path.write_text('[[rule]]\nid = "kettle"\nowns_model = "toaster"\noffer_zh = "水壶"\noffer_en = "Kettle"\n'
                    'valid_until = "2026-12-31"\n', encoding="utf-8")
    rules = load_rules(str(path))
    assert suggest([{"product_line": "appliances", "model": "Toaster T1"}], rules, TODAY)["en"] == "Kettle"
    assert suggest([{"product_line": "appliances", "model": "Toaster T1"}], rules, date(2027, 1, 1)) is None


@pytest.mark.parametrize("text,message", [
    ('[[rule]]\nid = "a"\noffer_zh = "x"\noffer_en = "y"\n', "missing key 'owns_model'"),
    ('[[rule]]\nid = "a"\nowns_model = []\noffer_zh = "x"\noffer_en = "y"\n', "owns_model"),
    ('[[rule]]\nid = "a"\nowns_model = "m"\noffer_zh = "x"\noffer_en = "y"\npurchased_within_days = -1\n',
     "purchased_within_days"),
    ('[[rule]]\nid = "a"\nowns_model = "m"\noffer_zh = "x"\noffer_en = "y"\ncolour = "red"\n', "unknown key"),
])
def test_bad_rules_are_reported_with_the_rule_and_key(text, message):
    import tomllib

    with pytest.raises(RuleError, match=message):
        parse_rules(tomllib.loads(text))


async def test_a_bad_rules_file_stops_the_daemon_naming_the_key(tmp_path, settings):
    from cti.app import Daemon
    from cti.config import ConfigError

    s = settings.replace("ami", enabled=False).replace("agi", port=0).replace(
        "http", port=0, crosssell_rules=str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="http.crosssell_rules"):
        await Daemon(s).start()
