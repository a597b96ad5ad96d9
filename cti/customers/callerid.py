"""Caller-ID normalization with ``phonenumbers``: every spelling of a number maps to one E.164 key.

``+86 138 0013 8000``, ``008613800138000``, ``13800138000`` and ``86-138...`` are one caller;
``021 6123 4567`` and ``+86 21 6123 4567`` another. ``anonymous``, ``unknown``, restricted
presentation, empty and garbage give :data:`UNKNOWN` and never raise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, NumberParseException, PhoneMetadata, PhoneNumberType

#: Asterisk ``agi_callingpres``/``CALLINGPRES`` values whose low two bits say "restricted" (1) or
#: "not available" (2): presentation prohibited, the number must not be used or shown.
_RESTRICTED_PRES_BITS = (1, 2)

#: International call prefixes (``00`` for CN and most of the world) are understood by phonenumbers
#: itself once it knows the region; these words are what trunks send for "no number".
_NO_NUMBER_WORDS = frozenset(
    {"", "anonymous", "unknown", "unavailable", "private", "restricted", "withheld", "none", "null", "asterisk"}
)

MAX_RAW_LEN = 64


@dataclass(frozen=True, slots=True)
class CallerNumber:
    """A normalized caller number; ``e164`` is None for an unknown caller."""

    e164: str | None
    kind: str = "unknown"  # mobile | landline | unknown
    raw: str = ""

    @property
    def known(self) -> bool:
        return self.e164 is not None


UNKNOWN = CallerNumber(None)


def is_restricted(callingpres: str | int | None) -> bool:
    """True when Asterisk's calling presentation says the number is restricted or unavailable."""
    if callingpres is None or callingpres == "":
        return False
    try:
        pres = int(callingpres)
    except (TypeError, ValueError):
        return False
    return (pres & 0x60) >> 5 in _RESTRICTED_PRES_BITS


def normalize(raw: str | bytes | None, region: str = "CN", callingpres: str | int | None = None) -> CallerNumber:
    """Normalize a caller ID to E.164, or return :data:`UNKNOWN`; never raises."""
    if raw is None or is_restricted(callingpres):
        return UNKNOWN
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str):
        return UNKNOWN
    text = raw.strip()
    if len(text) > MAX_RAW_LEN or text.lower() in _NO_NUMBER_WORDS:
        return UNKNOWN
    return _normalize_cached(text, region)


@lru_cache(maxsize=65536)
def _normalize_cached(text: str, region: str) -> CallerNumber:
    parts = _candidate_parts(text, region)
    if parts is not None:  # what phonenumbers' parse gives for it, without the parse (see e164_candidate)
        number: phonenumbers.PhoneNumber | None = phonenumbers.PhoneNumber(country_code=parts[0], national_number=int(parts[1]))
    else:
        number = _parse(text, region)
    return _classify(text, region, number)


def _normalize_by_parse(text: str, region: str) -> CallerNumber:
    """The reference: phonenumbers' parse for every input (tests prove the fast path equal to it)."""
    return _classify(text, region, _parse(text, region))


def _classify(text: str, region: str, number: phonenumbers.PhoneNumber | None) -> CallerNumber:
    ntype = phonenumbers.number_type(number) if number is not None else PhoneNumberType.UNKNOWN
    if ntype == PhoneNumberType.UNKNOWN:
        # A trunk sending 86... without '+' or 00: try once as international, same country only.
        digits = "".join(ch for ch in text if ch.isdigit())
        if not (digits and digits == text and not digits.startswith("0")):
            return CallerNumber(None, raw=text)
        number = _parse("+" + digits, None)
        if number is None or number.country_code != phonenumbers.country_code_for_region(region):
            return CallerNumber(None, raw=text)
        ntype = phonenumbers.number_type(number)
        if ntype == PhoneNumberType.UNKNOWN:
            return CallerNumber(None, raw=text)
    # number_type() != UNKNOWN is exactly is_valid_number(), at half the cost of calling both.
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if ntype == PhoneNumberType.MOBILE:
        kind = "mobile"
    elif ntype in (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.TOLL_FREE):
        kind = "landline"
    else:
        kind = "unknown"
    return CallerNumber(e164, kind, text)


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    except Exception:  # noqa: BLE001 - garbage must never break a call
        return None


# --------------------------------------------------------------------------------------------
# The FastAGI hot path: a caller ID that already spells its E.164 key
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """What phonenumbers' metadata says about dialing in one region."""

    cc: str
    national_prefix: re.Pattern[str] | None  # national_prefix_for_parsing (trunk and carrier prefixes)
    international_prefix: re.Pattern[str] | None


@lru_cache(maxsize=512)
def _plan(region: str) -> _Plan | None:
    md = PhoneMetadata.metadata_for_region(region.upper(), None)
    if md is None or not md.country_code:
        return None
    natl = md.national_prefix_for_parsing or (re.escape(md.national_prefix) if md.national_prefix else None)
    return _Plan(
        str(md.country_code),
        re.compile(natl) if natl else None,
        re.compile(md.international_prefix) if md.international_prefix else None,
    )


def e164_candidate(raw: object, region: str = "CN", callingpres: str | int | None = None) -> str | None:
    """The E.164 key a plain-digit caller ID spells as written, or None; a hint for a keyed lookup.

    ``13800138000`` in CN gives ``+8613800138000``; ``+8613800138000`` gives itself. Only numbers
    that phonenumbers reads without any rewriting qualify (no trunk or carrier prefix of the
    region's metadata, no international prefix, no leading zero, no country code without ``+``):
    for those, phonenumbers' parse gives exactly this country code and national number, so
    :func:`normalize` returns this key whenever the number is valid, and a key of an invalid
    number cannot be in the customer database (every stored key came from :func:`normalize`).
    So a database hit on the candidate is the caller; on a miss, call :func:`normalize`. It saves
    phonenumbers' parse and validation on the FastAGI path of most known callers; :func:`normalize`
    skips the parse for the same numbers (a CSV import of a million rows validates them all).
    """
    if raw.__class__ is not str or not raw or is_restricted(callingpres):
        return None
    parts = _candidate_parts(raw, region)  # type: ignore[arg-type]
    return None if parts is None else f"+{parts[0]}{parts[1]}"


def _candidate_parts(raw: str, region: str) -> tuple[int, str] | None:
    """(country code, national number) of a plain-digit caller ID phonenumbers reads as written."""
    if not raw:
        return None
    if raw[0] == "+":
        digits = raw[1:]
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 15 or digits[0] == "0":
            return None
        for n in (1, 2, 3):
            regions = COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:n]))
            if regions:
                break
        else:
            return None
        if len(regions) != 1:  # a shared country code (NANP, +7, +44...): let phonenumbers pick the region
            return None
        plan, national = _plan(regions[0]), digits[n:]
    else:
        if not (raw.isascii() and raw.isdigit()):
            return None
        plan, national = _plan(region), raw
        if plan is None or national.startswith(plan.cc):  # maybe the country code without '+'
            return None
        if plan.international_prefix is not None and plan.international_prefix.match(national):
            return None
    if plan is None or not national or national[0] == "0" or len(plan.cc) + len(national) > 15:
        return None
    if plan.national_prefix is not None:
        m = plan.national_prefix.match(national)
        if m is not None and (m.end() > 0 or any(g is not None for g in m.groups())):
            return None  # phonenumbers may strip or transform a prefix here
    return int(plan.cc), national
