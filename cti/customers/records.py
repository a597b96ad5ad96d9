"""Validation of customer data coming from outside (CSV rows, CLI, console): pure, no I/O."""

from __future__ import annotations

from typing import Any

import unicodedata
from dataclasses import dataclass, field
from datetime import date

from cti.customers.callerid import CallerNumber, normalize

LANGUAGES = ("zh", "en")
PRODUCT_LINES = ("appliances", "mobile", "office")
MAX_NAME = 64
MAX_FIELD = 256

_TRUE = {"1", "true", "yes", "y", "vip", "是"}
_FALSE = {"", "0", "false", "no", "n", "否"}


class InvalidRecord(ValueError):
    """A customer record that cannot be stored; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class ProductInput:
    product_line: str
    model: str
    purchased_on: date | None = None
    serial: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerInput:
    phones: tuple[CallerNumber, ...]
    family_name: str = ""
    given_name: str = ""
    title: str = ""
    language: str = "zh"
    vip: bool = False
    dealer: str | None = None
    email: str | None = None
    products: tuple[ProductInput, ...] = field(default_factory=tuple)


def clean_text(value: str | None, name: str, limit: int = MAX_FIELD) -> str:
    """Strip control characters and surrounding blanks; reject over-long values."""
    if value is None:
        return ""
    text = str(value)
    if not text.isprintable():  # fast path: most values have no control characters
        text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = text.strip()
    if "  " in text:
        text = " ".join(text.split())
    if len(text) > limit:
        raise InvalidRecord(f"{name}: longer than {limit} characters")
    return text


def parse_bool(value: str | None, name: str) -> bool:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidRecord(f"{name}: {value!r} is not yes/no")


def parse_phones(value: str | None, region: str) -> tuple[CallerNumber, ...]:
    """One or more numbers separated by ``;`` or ``|``; each must be a valid number."""
    parts = [p.strip() for p in (value or "").replace("|", ";").split(";") if p.strip()]
    if not parts:
        raise InvalidRecord("phones: no phone number")
    numbers: list[CallerNumber] = []
    for part in parts:
        number = normalize(part, region)
        if not number.known:
            raise InvalidRecord(f"phones: {part[:32]!r} is not a valid phone number")
        if number.e164 not in {n.e164 for n in numbers}:
            numbers.append(number)
    return tuple(numbers)


def parse_products(value: str | None) -> tuple[ProductInput, ...]:
    """``line:model[:YYYY-MM-DD[:serial]]`` entries separated by ``;``."""
    products: list[ProductInput] = []
    for entry in (value or "").split(";"):
        entry = entry.strip()
        if not entry:
            continue
        parts = [p.strip() for p in entry.split(":")]
        line = parts[0].lower()
        if line not in PRODUCT_LINES:
            raise InvalidRecord(f"products: unknown product line {parts[0][:20]!r} (expected {', '.join(PRODUCT_LINES)})")
        if len(parts) < 2 or not parts[1]:
            raise InvalidRecord(f"products: {entry[:40]!r} has no model")
        purchased: date | None = None
        if len(parts) > 2 and parts[2]:
            try:
                purchased = date.fromisoformat(parts[2])
            except ValueError:
                raise InvalidRecord(f"products: purchase date {parts[2][:20]!r} is not YYYY-MM-DD") from None
        serial = clean_text(parts[3], "products.serial") if len(parts) > 3 and parts[3] else None
        products.append(ProductInput(line, clean_text(parts[1], "products.model"), purchased, serial))
    return tuple(products)


def customer_from_fields(fields: dict[str, str | None], region: str) -> CustomerInput:
    """Validate a mapping of the documented CSV columns into a CustomerInput.

    Every problem of the row is reported at once (``; ``-separated in the InvalidRecord)."""
    problems: list[str] = []

    def check(parse: Any, *args: Any) -> Any:
        try:
            return parse(*args)
        except InvalidRecord as exc:
            problems.append(str(exc))
            return None

    language = (fields.get("language") or "zh").strip().lower()
    if language not in LANGUAGES:
        problems.append(f"language: {language[:10]!r} (expected zh or en)")
    family = check(clean_text, fields.get("family_name"), "family_name", MAX_NAME)
    given = check(clean_text, fields.get("given_name"), "given_name", MAX_NAME)
    if family == "" and given == "":
        problems.append("family_name/given_name: a customer needs a name")
    email = check(clean_text, fields.get("email"), "email") or None
    if email and "@" not in email:
        problems.append(f"email: {email[:40]!r} is not an e-mail address")
    phones = check(parse_phones, fields.get("phones"), region)
    title = check(clean_text, fields.get("title"), "title", 16)
    vip = check(parse_bool, fields.get("vip"), "vip")
    dealer = check(clean_text, fields.get("dealer"), "dealer")
    products = check(parse_products, fields.get("products"))
    if problems:
        raise InvalidRecord("; ".join(problems))
    return CustomerInput(phones=phones, family_name=family, given_name=given, title=title, language=language,
                         vip=vip, dealer=dealer or None, email=email, products=products)


def display_name(family_name: str, given_name: str, language: str) -> str:
    """Chinese order for zh ("王伟"), Western order for en ("Wei Wang")."""
    if language == "zh":
        return f"{family_name}{given_name}" if _is_cjk(family_name + given_name) else f"{family_name} {given_name}".strip()
    return f"{given_name} {family_name}".strip()


def _is_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)
