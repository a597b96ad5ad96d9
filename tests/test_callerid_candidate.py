"""e164_candidate: the FastAGI fast path never names a different caller than normalize() would."""

from __future__ import annotations

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.customers.callerid import _normalize_by_parse, e164_candidate, normalize

REGIONS = ["CN", "US", "GB", "DE", "IT", "AR", "RU", "MX", "FR", "JP", "IN", "BR"]


def _agrees(raw: str, region: str) -> None:
    cand = e164_candidate(raw, region)
    reference = _normalize_by_parse(raw, region)  # phonenumbers' parse, always
    got = normalize(raw, region)  # skips the parse for candidates
    assert (got.e164, got.kind) == (reference.e164, reference.kind), (raw, region, got, reference)
    key = reference.e164
    # A candidate is looked up first; a hit must be the caller normalize() finds. When normalize()
    # finds no valid number, the candidate cannot be a stored key (stored keys are valid numbers).
    if cand is not None:
        assert key is None or cand == key, (raw, region, cand, key)
        if key is None:
            assert _normalize_by_parse(cand, region).e164 in (None, cand)


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="0123456789", min_size=1, max_size=16), st.sampled_from(REGIONS), st.booleans())
def test_candidate_agrees_with_normalize_on_digit_strings(digits: str, region: str, plus: bool) -> None:
    _agrees(("+" if plus else "") + digits, region)


def test_candidate_agrees_on_every_example_number_in_every_spelling() -> None:
    checked = 0
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            ex = phonenumbers.example_number_for_type(region, kind)
            if ex is None:
                continue
            national = phonenumbers.national_significant_number(ex)
            e164 = phonenumbers.format_number(ex, phonenumbers.PhoneNumberFormat.E164)
            trunk = phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix or "0"
            for home in (region, "CN", "US"):
                for raw in (national, e164, trunk + national, "0" + national, e164[1:]):
                    _agrees(raw, home)
                    checked += 1
    assert checked > 1000


def test_the_common_spellings_of_a_chinese_number() -> None:
    assert e164_candidate("13800138000", "CN") == "+8613800138000"
    assert e164_candidate("+8613800138000", "CN") == "+8613800138000"
    # rewritten by phonenumbers (trunk 0, 00 / 86 / carrier prefixes): left to normalize()
    for raw in ("02161234567", "008613800138000", "8613800138000", "1795113800138000", " 13800138000", "138-0013-8000"):
        assert e164_candidate(raw, "CN") is None


def test_no_candidate_for_withheld_or_odd_caller_ids() -> None:
    assert e164_candidate("13800138000", "CN", callingpres=0x21) is None  # presentation restricted
    for raw in (None, "", "anonymous", "+", "+0", "+020200000000", "１３８００１３８０００", "1" * 20, b"13800138000"):
        assert e164_candidate(raw, "CN") is None
