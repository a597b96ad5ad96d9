"""Routing rules edited from the web: one JSON document, validated, saved as numbered versions.

The document (see :func:`document_from_config`) carries everything the FastAGI routing and the
pop's cross-sell suggestions use::

    {"queues": [...], "default_queue": "appliances", "afterhours_queue": "", "default_language": "zh",
     "dids": {"4008001234": "mobile"}, "ivr": {"1": "appliances"}, "product_queues": {"mobile": "mobile"},
     "base_priority": 0, "vip_priority": 5, "complaint_priority": 10, "timezone": "Asia/Shanghai",
     "hours": {"0": "08:00-20:30", ...}, "holidays": ["2026-10-01"], "crosssell": [{...rule...}]}

:func:`validate` turns it into :class:`ValidRules` (``RoutingRules`` + cross-sell rules) or raises
:class:`RulesInvalid` whose errors each name the field (``dids.4008001234``, ``hours.3``, ...).
Every save is a new version in ``routing_rule_versions``; exactly one is active; activating an
older version is the rollback. Until the first save, the file config (routing.*) is the rules.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from cti.config import RoutingConfig
from cti.db.tables import routing_rule_versions as t
from cti.routing.hours import parse_hours
from cti.routing.rules import RoutingRules
from cti.web.crosssell import Rule, RuleError, parse_rules

log = structlog.get_logger(__name__)

FIELDS = ("queues", "default_queue", "afterhours_queue", "default_language", "dids", "ivr", "product_queues",
          "base_priority", "vip_priority", "complaint_priority", "timezone", "hours", "holidays", "crosssell")
LANGUAGES = ("zh", "en")
_QUEUE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_IVR_KEY = re.compile(r"^[0-9*#]{1,4}$")
MAX_PRIORITY = 1000


@dataclass(frozen=True)
class FieldError:
    """A bad field: ``message`` is English for API clients, ``code`` (and ``params``) a stable key the pages
    translate (routing.js ``err.<code>``)."""

    field: str
    message: str
    code: str = "invalid"
    params: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "message": self.message, "code": self.code, "params": dict(self.params)}


class RulesInvalid(ValueError):
    """The document is not valid; ``errors`` name each bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class ValidRules:
    routing: RoutingRules
    crosssell: tuple[Rule, ...]
    document: dict[str, Any]


@dataclass(frozen=True)
class Version:
    version: int
    created_by: str
    created_at: datetime
    comment: str
    active: bool
    document: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        return {"version": self.version, "created_by": self.created_by, "created_at": self.created_at.isoformat(),
                "comment": self.comment, "active": self.active}


# -- the document ----------------------------------------------------------------------------
def rule_to_dict(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rule.id}
    if rule.owns_line:
        out["owns_line"] = rule.owns_line
    out["owns_model"] = list(rule.owns_model)
    if rule.purchased_within_days is not None:
        out["purchased_within_days"] = rule.purchased_within_days
    if rule.lacks_model:
        out["lacks_model"] = list(rule.lacks_model)
    if rule.valid_until is not None:
        out["valid_until"] = rule.valid_until.isoformat()
    out["offer_zh"], out["offer_en"] = rule.offer_zh, rule.offer_en
    return out


def document_from_config(cfg: RoutingConfig, crosssell: tuple[Rule, ...] = ()) -> dict[str, Any]:
    """The rules of the file config (the default until the first save) as a document."""
    return {
        "queues": list(cfg.queues),
        "default_queue": cfg.default_queue,
        "afterhours_queue": cfg.afterhours_queue,
        "default_language": cfg.default_language,
        "dids": dict(cfg.dids),
        "ivr": dict(cfg.ivr),
        "product_queues": {"appliances": "appliances", "mobile": "mobile"},
        "base_priority": cfg.base_priority,
        "vip_priority": cfg.vip_priority,
        "complaint_priority": cfg.complaint_priority,
        "timezone": cfg.timezone,
        "hours": dict(cfg.hours),
        "holidays": [],
        "crosssell": [rule_to_dict(r) for r in crosssell],
    }


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def validate(doc: Any) -> ValidRules:
    """The document as rules, or :class:`RulesInvalid` listing every bad field."""
    errs: list[FieldError] = []

    def bad(field: str, message: str, code: str = "invalid", **params: Any) -> None:
        # params are the caller's text: lone surrogates escaped so the JSON answer encodes
        errs.append(FieldError(field, message, code, tuple(
            (k, str(v).encode("utf-8", "backslashreplace").decode("utf-8")) for k, v in params.items())))

    if not isinstance(doc, Mapping):
        raise RulesInvalid([FieldError("rules", "expected a JSON object", "object")])
    for key in sorted(set(doc) - set(FIELDS)):
        bad(key, "unknown field", "unknown_field")
    for key in FIELDS:
        if key not in doc:
            bad(key, "required", "required")
    if errs:
        raise RulesInvalid(errs)

    queues = doc["queues"]
    if not isinstance(queues, list) or not queues or not all(isinstance(q, str) and _QUEUE.match(q) for q in queues):
        bad("queues", "expected a non-empty list of queue names (letters, digits, - and _)", "queues_list")
        queues = []
    elif len(set(queues)) != len(queues):
        bad("queues", "a queue is listed twice", "queue_twice")
    elif "complaints" not in queues:
        bad("queues", "must include 'complaints' (callers with an open complaint go there)", "complaints_queue")
    known = set(queues)

    def queue(field: str, value: Any, *, empty_ok: bool = False) -> str:
        if empty_ok and value == "":
            return ""
        if not isinstance(value, str) or value not in known:
            bad(field, f"unknown queue {value!r} (not in queues)", "unknown_queue", value=value)
            return ""
        return value

    default_queue = queue("default_queue", doc["default_queue"])
    afterhours = queue("afterhours_queue", doc["afterhours_queue"], empty_ok=True)
    lang = doc["default_language"]
    if lang not in LANGUAGES:
        bad("default_language", f"expected one of {', '.join(LANGUAGES)}", "language")

    def table(name: str) -> dict[str, Any]:
        value = doc[name]
        if not isinstance(value, Mapping):
            bad(name, "expected an object", "object")
            return {}
        return dict(value)

    dids: dict[str, str] = {}
    for number, q in table("dids").items():
        digits = _digits(number)
        if len(digits) < 3 or not re.fullmatch(r"\+?[0-9 -]+", number.strip()):
            bad(f"dids.{number}", "expected a phone number (digits)", "phone")
        elif digits in dids:
            bad(f"dids.{number}", "number listed twice", "number_twice")
        else:
            dids[digits] = queue(f"dids.{number}", q)
    ivr: dict[str, str] = {}
    for digit, q in table("ivr").items():
        if not _IVR_KEY.match(digit):
            bad(f"ivr.{digit}", "expected 1-4 keypad digits (0-9, *, #)", "ivr_digits")
        else:
            ivr[digit] = queue(f"ivr.{digit}", q)
    products: dict[str, str] = {}
    for line, q in table("product_queues").items():
        if not line.strip():
            bad("product_queues", "empty product line", "empty_line")
        else:
            products[line.strip()] = queue(f"product_queues.{line}", q)

    prio: dict[str, int] = {}
    for name in ("base_priority", "vip_priority", "complaint_priority"):
        v = doc[name]
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_PRIORITY:
            bad(name, f"expected an integer 0..{MAX_PRIORITY}", "priority", max=MAX_PRIORITY)
        else:
            prio[name] = v

    tz: ZoneInfo | None = None
    if not isinstance(doc["timezone"], str) or not doc["timezone"]:
        bad("timezone", "expected an IANA time zone such as Asia/Shanghai", "timezone")
    else:
        try:
            tz = ZoneInfo(doc["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            bad("timezone", f"unknown time zone {doc['timezone']!r}", "unknown_timezone", value=doc["timezone"])

    hours = {}
    for day, span in table("hours").items():
        try:
            if not isinstance(span, str):
                raise ValueError("expected HH:MM-HH:MM")
            hours.update(parse_hours({day: span}))
        except ValueError as exc:
            bad(f"hours.{day}", str(exc), "hours")

    holidays: set[date] = set()
    raw_holidays = doc["holidays"]
    if not isinstance(raw_holidays, list):
        bad("holidays", "expected a list of dates (YYYY-MM-DD)", "dates")
    else:
        for i, d in enumerate(raw_holidays):
            try:
                if not isinstance(d, str) or len(d.strip()) != 10:
                    raise ValueError
                day_ = date.fromisoformat(d.strip())
            except ValueError:
                bad(f"holidays[{i}]", f"{d!r}: expected a date YYYY-MM-DD", "date", value=d)
                continue
            if day_ in holidays:
                bad(f"holidays[{i}]", f"{d} listed twice", "date_twice", value=d)
            holidays.add(day_)

    crosssell: tuple[Rule, ...] = ()
    raw_cs = doc["crosssell"]
    if not isinstance(raw_cs, list):
        bad("crosssell", "expected a list of rules", "crosssell_list")
    else:
        ids: set[str] = set()
        parsed = []
        for i, raw in enumerate(raw_cs):
            try:
                rule = parse_rules({"rule": [raw]})[0]
            except RuleError as exc:
                bad(f"crosssell[{i}]", str(exc).replace("rule[0]", "rule"), "crosssell_rule", detail=str(exc).replace("rule[0]", "rule"))
                continue
            if rule.id in ids:
                bad(f"crosssell[{i}]", f"rule id {rule.id!r} used twice", "rule_twice", value=rule.id)
            ids.add(rule.id)
            parsed.append(rule)
        crosssell = tuple(parsed)

    if errs:
        raise RulesInvalid(errs)
    assert tz is not None
    routing = RoutingRules(
        default_queue=default_queue, dids=dids, ivr=ivr, base_priority=prio["base_priority"],
        vip_priority=prio["vip_priority"], complaint_priority=prio["complaint_priority"], tz=tz, hours=hours,
        afterhours_queue=afterhours or default_queue, default_language=lang, product_queues=products,
        holidays=frozenset(holidays))
    normalized = {k: doc[k] for k in FIELDS}
    normalized["holidays"] = sorted(d.isoformat() for d in holidays)
    return ValidRules(routing, crosssell, normalized)


# -- versions ------------------------------------------------------------------------------
def _version(row: Any) -> Version:
    return Version(int(row.version), row.created_by, row.created_at, row.comment, bool(row.active),
                   json.loads(row.rules))


async def save(sm: async_sessionmaker, doc: Any, *, created_by: str, comment: str = "",
               now: datetime | None = None) -> tuple[Version, ValidRules]:
    """Validate ``doc`` (RulesInvalid otherwise), store it as the next version and make it active."""
    valid = validate(doc)
    now = now or datetime.now(timezone.utc)
    async with sm() as session, session.begin():
        last = (await session.execute(select(func.max(t.c.version)))).scalar()
        number = int(last or 0) + 1
        await session.execute(update(t).where(t.c.active.is_(True)).values(active=False))
        await session.execute(insert(t).values(
            version=number, rules=json.dumps(valid.document, ensure_ascii=False, sort_keys=True),
            created_by=created_by[:64], created_at=now, comment=comment[:500], active=True))
    log.info("routing.rules_saved", version=number, by=created_by)
    return Version(number, created_by[:64], now, comment[:500], True, valid.document), valid


async def active(sm: async_sessionmaker) -> Version | None:
    """The active version, or None before the first save."""
    async with sm() as session:
        row = (await session.execute(
            select(t).where(t.c.active.is_(True)).order_by(t.c.version.desc()).limit(1))).first()
    return _version(row) if row is not None else None


async def get(sm: async_sessionmaker, version: int) -> Version | None:
    async with sm() as session:
        row = (await session.execute(select(t).where(t.c.version == version))).first()
    return _version(row) if row is not None else None


async def versions(sm: async_sessionmaker, limit: int = 100) -> list[Version]:
    """Newest first."""
    async with sm() as session:
        rows = (await session.execute(select(t).order_by(t.c.version.desc()).limit(limit))).all()
    return [_version(r) for r in rows]


async def activate(sm: async_sessionmaker, version: int) -> tuple[Version, ValidRules] | None:
    """Make an existing version the active one (rollback); None when it does not exist.

    The stored document is validated again (RulesInvalid if it no longer is)."""
    async with sm() as session, session.begin():
        row = (await session.execute(select(t).where(t.c.version == version))).first()
        if row is None:
            return None
        valid = validate(json.loads(row.rules))
        await session.execute(update(t).where(t.c.active.is_(True)).values(active=False))
        await session.execute(update(t).where(t.c.version == version).values(active=True))
    log.info("routing.rules_activated", version=version)
    v = _version(row)
    return Version(v.version, v.created_by, v.created_at, v.comment, True, v.document), valid


async def active_rules(sm: async_sessionmaker) -> ValidRules | None:
    """The active saved rules for the daemon's start, or None (none saved, or no longer valid: logged)."""
    v = await active(sm)
    if v is None:
        return None
    try:
        return validate(v.document)
    except RulesInvalid as exc:
        log.error("routing.saved_rules_invalid", version=v.version, error=str(exc))
        return None
