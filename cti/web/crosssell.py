"""Cross-sell suggestions for the screen-pop: configurable rules, a pure matcher.

Rules live in a TOML file (``http.crosssell_rules``; the packaged ``crosssell.toml`` by
default); see that file for the format.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping


class RuleError(ValueError):
    """The rules file is unreadable or a rule is invalid; the message names the rule and key."""


@dataclass(frozen=True)
class Rule:
    id: str
    owns_model: tuple[str, ...]
    offer_zh: str
    offer_en: str
    owns_line: str | None = None
    purchased_within_days: int | None = None
    lacks_model: tuple[str, ...] = ()
    valid_until: date | None = None


def _words(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise RuleError(f"{where}: expected a string or a list of strings")
    return tuple(v.strip().lower() for v in value)


def parse_rules(data: Mapping[str, Any]) -> tuple[Rule, ...]:
    rules = []
    for i, raw in enumerate(data.get("rule", [])):
        where = f"rule[{i}]"
        if not isinstance(raw, dict):
            raise RuleError(f"{where}: expected a table")
        unknown = set(raw) - {f for f in Rule.__dataclass_fields__}
        if unknown:
            raise RuleError(f"{where}: unknown key(s) {sorted(unknown)}")
        try:
            rid = str(raw["id"])
            where = f"rule {rid!r}"
            days = raw.get("purchased_within_days")
            if days is not None and (not isinstance(days, int) or days <= 0):
                raise RuleError(f"{where}: purchased_within_days must be a positive integer")
            until = raw.get("valid_until")
            if isinstance(until, str):
                until = date.fromisoformat(until)
            rules.append(Rule(
                id=rid, owns_model=_words(raw["owns_model"], f"{where}.owns_model"),
                offer_zh=str(raw["offer_zh"]), offer_en=str(raw["offer_en"]),
                owns_line=raw.get("owns_line"), purchased_within_days=days,
                lacks_model=_words(raw.get("lacks_model", []), f"{where}.lacks_model") if raw.get("lacks_model") else (),
                valid_until=until))
        except KeyError as exc:
            raise RuleError(f"{where}: missing key {exc.args[0]!r}") from None
        except ValueError as exc:
            if isinstance(exc, RuleError):
                raise
            raise RuleError(f"{where}: {exc}") from None
    return tuple(rules)


def load_rules(path: str | Path | None) -> tuple[Rule, ...]:
    """Rules from ``path``, or the packaged defaults when ``path`` is empty."""
    try:
        if path:
            text = Path(path).read_text(encoding="utf-8")
        else:
            text = resources.files("cti.web").joinpath("crosssell.toml").read_text(encoding="utf-8")
        return parse_rules(tomllib.loads(text))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RuleError(f"{path or 'crosssell.toml'}: {exc}") from None


def _has(model: str, words: Iterable[str]) -> bool:
    m = model.lower()
    return any(w in m for w in words)


def suggest(products: Iterable[Mapping[str, Any]], rules: Iterable[Rule], today: date) -> dict[str, str] | None:
    """The first rule matching the customer's products: ``{"id", "zh", "en"}``, or None."""
    owned = list(products)
    for rule in rules:
        if rule.valid_until is not None and today > rule.valid_until:
            continue
        if rule.lacks_model and any(_has(str(p.get("model") or ""), rule.lacks_model) for p in owned):
            continue
        for p in owned:
            if rule.owns_line and p.get("product_line") != rule.owns_line:
                continue
            if not _has(str(p.get("model") or ""), rule.owns_model):
                continue
            if rule.purchased_within_days is not None:
                bought = p.get("purchased_on")
                if isinstance(bought, str):
                    bought = date.fromisoformat(bought)
                if bought is None or bought < today - timedelta(days=rule.purchased_within_days) or bought > today:
                    continue
            return {"id": rule.id, "zh": rule.offer_zh, "en": rule.offer_en}
    return None


#: The queue of the complaints line (``asterisk-config/queues.conf``).
COMPLAINTS_QUEUE = "complaints"


def quiet_for_complaint(queue: str | None, open_tickets: Iterable[Mapping[str, Any]], enabled: bool = True) -> bool:
    """True when no offer may be made: a caller with an open complaint on the complaints line
    (``http.crosssell_skip_complaints``, on by default)."""
    return enabled and queue == COMPLAINTS_QUEUE and any(
        (t.get("category") or "complaint") == "complaint" for t in open_tickets)
