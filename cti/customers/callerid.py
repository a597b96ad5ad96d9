"""Caller-ID normalization with ``phonenumbers``: every spelling of a number maps to one E.164 key.

``+86 138 0013 8000``, ``008613800138000``, ``13800138000`` and ``86-138...`` are one caller;
``021 6123 4567`` and ``+86 21 6123 4567`` another. ``anonymous``, ``unknown``, restricted
presentation, empty and garbage give :data:`UNKNOWN` and never raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

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
    number = _parse(text, region)
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
