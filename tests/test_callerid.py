"""Every spelling of a caller's number maps to one E.164 key; junk is an unknown caller."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from cti.customers.callerid import UNKNOWN, is_restricted, normalize


@pytest.mark.parametrize(
    "raw, e164, kind",
    [
        ("13800138000", "+8613800138000", "mobile"),
        ("+8613800138000", "+8613800138000", "mobile"),
        ("008613800138000", "+8613800138000", "mobile"),
        ("8613800138000", "+8613800138000", "mobile"),
        (" 138-0013-8000 ", "+8613800138000", "mobile"),
        ("+86 138 0013 8000", "+8613800138000", "mobile"),
        ("02161234567", "+862161234567", "landline"),
        ("+86 21 6123 4567", "+862161234567", "landline"),
        ("00862161234567", "+862161234567", "landline"),
        ("075588889999", "+8675588889999", "landline"),
        ("+14155552671", "+14155552671", "landline"),
        (b"13800138000", "+8613800138000", "mobile"),
    ],
)
def test_spellings_map_to_one_key(raw, e164, kind):
    number = normalize(raw, "CN")
    assert number.e164 == e164
    assert number.kind == kind


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "anonymous", "Anonymous", "unknown", "UNAVAILABLE", "private", "restricted", None, "garbage",
     "12345", "\x00\n", "+", "0086", "1" * 200, b"\xff\xfe\x00", "13800138000;x=1\r\nEvent: Fake"],
)
def test_no_number_is_unknown_caller(raw):
    assert normalize(raw, "CN").e164 is None


def test_restricted_presentation_hides_a_valid_number():
    # Asterisk callingpres 32 = prohib_not_screened, 35 = prohib_network_number, 67 = unavailable.
    for pres in ("32", "33", "35", 67):
        assert is_restricted(pres)
        assert normalize("13800138000", "CN", pres) is UNKNOWN
    for pres in ("0", "1", "3", "", None, "junk"):
        assert not is_restricted(pres)
    assert normalize("13800138000", "CN", "0").e164 == "+8613800138000"


@given(st.one_of(st.text(max_size=100), st.binary(max_size=100)), st.sampled_from(["CN", "US", "GB"]))
def test_normalize_never_raises(raw, region):
    result = normalize(raw, region)
    assert result.e164 is None or result.e164.startswith("+")
