"""The ``[outbound]`` config section (cti/config.py's ``Settings.outbound``), the same table
``cti outbound ... --policy FILE.toml`` reads (the file's keys override cti.toml's).

cti.toml::

    [outbound]
    caps = [{count = 1, days = 7}, {count = 3, days = 30}]          # contacts per customer per window
    caps_by_reason = {"customer asked for a call back" = [{count = 3, days = 1}]}
    center_timezone = "Asia/Shanghai"
    center_hours = {"0" = "09:00-20:00", "1" = "09:00-20:00"}        # weekday 0 = Monday; missing = closed
    customer_timezone = "Asia/Shanghai"                              # when the customer's preferences do not say
    customer_hours = {"0" = "09:00-20:00"}
    max_attempts = 3
    retry_backoff_minutes = [120, 1440]                              # after the 1st, 2nd ... no answer
    credits = {dealer_share = 0.6, finder_share = 0.2, expert_share = 0.3}
    context = "cti-outbound"                                         # dialplan context of the Originate
    originate_timeout_s = 30                                         # how long the agent's phone rings
    sweep_interval_s = 30                                            # unconfirmed dials released every ...

    [[outbound.rules]]                                               # none: the built-in rules (rules.py)
    name = "repair-check"
    kind = "repair.completed"
    reason = "repair check"
    delay_hours = 72
    window_hours = 168                                               # optional (default 7 days)
    skill = "appliances"                                             # optional

Environment: ``CTI_OUTBOUND_CAPS='[{"count": 1, "days": 7}]'``, ``CTI_OUTBOUND_CAPS_BY_REASON`` and
``CTI_OUTBOUND_CENTER_HOURS`` as JSON objects, ``CTI_OUTBOUND_RETRY_BACKOFF_MINUTES=120,1440``.
:meth:`OutboundConfig.build` raises ValueError naming the key (``outbound.caps[1].days: ...``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cti.outbound.attribution import CreditRules
from cti.outbound.policy import Cap, ContactPolicy
from cti.outbound.rules import DEFAULT_RULES, FollowupRule
from cti.routing.hours import parse_hours


def _every_day(span: str) -> dict[str, str]:
    return {str(d): span for d in range(7)}


@dataclass(frozen=True)
class OutboundSetup:
    """What the daemon and the CLI build the OutboundService from."""

    policy: ContactPolicy
    rules: tuple[FollowupRule, ...]
    credits: CreditRules
    context: str
    originate_timeout_ms: int
    sweep_interval_s: float


@dataclass(frozen=True)
class OutboundConfig:
    #: at most ``count`` outbound contacts per customer in any ``days`` days (all apply)
    caps: tuple[dict[str, Any], ...] = ({"count": 1, "days": 7}, {"count": 3, "days": 30})
    #: reason -> caps replacing ``caps`` for a follow-up with that reason (a merged one obeys all its reasons')
    caps_by_reason: Mapping[str, Any] = field(default_factory=dict)
    center_timezone: str = "Asia/Shanghai"
    center_hours: Mapping[str, str] = field(default_factory=lambda: _every_day("09:00-20:00"))
    customer_timezone: str = "Asia/Shanghai"
    customer_hours: Mapping[str, str] = field(default_factory=lambda: _every_day("09:00-20:00"))
    max_attempts: int = 3
    retry_backoff_minutes: tuple[float, ...] = (120.0, 1440.0)
    #: follow-up rules ``{name, kind, reason, delay_hours, window_hours?, skill?}``; empty: the built-in ones
    rules: tuple[dict[str, Any], ...] = ()
    #: lead credit shares ``dealer_share``, ``finder_share``, ``expert_share`` (0..1)
    credits: Mapping[str, str] = field(default_factory=dict)
    context: str = "cti-outbound"
    originate_timeout_s: float = 30.0
    sweep_interval_s: float = 30.0

    # -- building ---------------------------------------------------------------------------
    def build(self) -> OutboundSetup:
        """Policy, rules and credit rules; ValueError ``outbound.<key>...: why`` on the first bad value."""
        caps = _caps(self.caps, "outbound.caps")
        if not caps:
            raise ValueError("outbound.caps: at least one cap (e.g. [{count = 1, days = 7}])")
        if not isinstance(self.caps_by_reason, Mapping):
            raise ValueError("outbound.caps_by_reason: expected a table reason -> list of caps")
        by_reason = {str(r): _caps(v, f"outbound.caps_by_reason.{r}") for r, v in self.caps_by_reason.items()}
        for name in ("center_timezone", "customer_timezone"):
            zone = getattr(self, name)
            try:
                ZoneInfo(str(zone))
            except (ZoneInfoNotFoundError, ValueError, TypeError):
                raise ValueError(f"outbound.{name}: unknown time zone {zone!r}") from None
        hours: dict[str, dict[str, str]] = {}
        for name in ("center_hours", "customer_hours"):
            spec = getattr(self, name)
            if not isinstance(spec, Mapping):
                raise ValueError(f"outbound.{name}: expected a table weekday -> \"HH:MM-HH:MM\"")
            hours[name] = {str(k): str(v) for k, v in spec.items()}
            try:
                parse_hours(hours[name])
            except ValueError as exc:
                raise ValueError(f"outbound.{name}: {exc}") from None
        max_attempts = _number(self.max_attempts, "outbound.max_attempts", integer=True)
        if max_attempts < 1:
            raise ValueError(f"outbound.max_attempts: must be at least 1, got {max_attempts}")
        backoff = []
        for i, m in enumerate(_list(self.retry_backoff_minutes, "outbound.retry_backoff_minutes")):
            minutes = _number(m, f"outbound.retry_backoff_minutes[{i}]")
            if minutes < 0:
                raise ValueError(f"outbound.retry_backoff_minutes[{i}]: must not be negative, got {m!r}")
            backoff.append(timedelta(minutes=minutes))
        if not backoff and max_attempts > 1:
            raise ValueError("outbound.retry_backoff_minutes: needed when max_attempts > 1")
        policy = ContactPolicy(caps=caps, caps_by_reason=by_reason, center_timezone=str(self.center_timezone),
                               center_hours=hours["center_hours"], customer_timezone=str(self.customer_timezone),
                               customer_hours=hours["customer_hours"], max_attempts=int(max_attempts),
                               retry_backoff=tuple(backoff))
        rules = _rules(self.rules) if _list(self.rules, "outbound.rules") else DEFAULT_RULES
        credits = _credits(self.credits)
        if not str(self.context).strip() or any(c in str(self.context) for c in " ,|\r\n\t"):
            raise ValueError(f"outbound.context: not a dialplan context name: {self.context!r}")
        timeout = _number(self.originate_timeout_s, "outbound.originate_timeout_s")
        if not 5 <= timeout <= 300:
            raise ValueError(f"outbound.originate_timeout_s: expected 5-300 seconds, got {timeout}")
        sweep = _number(self.sweep_interval_s, "outbound.sweep_interval_s")
        if sweep <= 0:
            raise ValueError(f"outbound.sweep_interval_s: must be positive, got {sweep}")
        return OutboundSetup(policy, rules, credits, str(self.context).strip(), int(timeout * 1000), float(sweep))

    def policy(self) -> ContactPolicy:
        return self.build().policy

    def merged(self, data: Mapping[str, Any], source: str = "outbound") -> "OutboundConfig":
        """A copy with the keys of a TOML ``[outbound]`` table (``--policy FILE``) replacing these;
        ValueError on an unknown key."""
        known = {f.name for f in dataclasses.fields(self)}
        for key in data:
            if key not in known:
                raise ValueError(f"{source}.{key}: unknown key (known: {', '.join(sorted(known))})")
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
        return dataclasses.replace(self, **values)


def _list(value: Any, key: str) -> list[Any]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{key}: expected a list, got {value!r}")
    return list(value)


def _number(value: Any, key: str, integer: bool = False) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{key}: expected a number, got {value!r}")
    try:
        n = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: expected a number, got {value!r}") from None
    if not math.isfinite(n) or (integer and n != int(n)):
        raise ValueError(f"{key}: expected {'an integer' if integer else 'a number'}, got {value!r}")
    return int(n) if integer else n


def _caps(items: Any, key: str) -> tuple[Cap, ...]:
    out = []
    for i, item in enumerate(_list(items, key)):
        if not isinstance(item, Mapping):
            raise ValueError(f"{key}[{i}]: expected a table {{count = N, days = D}}, got {item!r}")
        for k in item:
            if k not in ("count", "days"):
                raise ValueError(f"{key}[{i}].{k}: unknown key (count, days)")
        vals = {}
        for k in ("count", "days"):
            if k not in item:
                raise ValueError(f"{key}[{i}].{k}: required")
            vals[k] = int(_number(item[k], f"{key}[{i}].{k}", integer=True))
            if vals[k] < 1:
                raise ValueError(f"{key}[{i}].{k}: must be at least 1, got {item[k]!r}")
        out.append(Cap(vals["count"], vals["days"]))
    return tuple(out)


_RULE_KEYS = ("name", "kind", "reason", "delay_hours", "window_hours", "skill")


def _rules(items: Any) -> tuple[FollowupRule, ...]:
    out: list[FollowupRule] = []
    for i, item in enumerate(_list(items, "outbound.rules")):
        key = f"outbound.rules[{i}]"
        if not isinstance(item, Mapping):
            raise ValueError(f"{key}: expected a table, got {item!r}")
        for k in item:
            if k not in _RULE_KEYS:
                raise ValueError(f"{key}.{k}: unknown key ({', '.join(_RULE_KEYS)})")
        texts = {}
        for k in ("name", "kind", "reason"):
            v = item.get(k)
            if not isinstance(v, str) or not v.strip():
                raise ValueError(f"{key}.{k}: required (a non-empty string)")
            texts[k] = v.strip()
        if "delay_hours" not in item:
            raise ValueError(f"{key}.delay_hours: required")
        delay = _number(item["delay_hours"], f"{key}.delay_hours")
        window = _number(item.get("window_hours", 24 * 7), f"{key}.window_hours")
        if delay < 0:
            raise ValueError(f"{key}.delay_hours: must not be negative, got {item['delay_hours']!r}")
        if window <= 0:
            raise ValueError(f"{key}.window_hours: must be positive, got {item['window_hours']!r}")
        if texts["name"] in {r.name for r in out}:  # the name keys "fires once per event"
            raise ValueError(f"{key}.name: {texts['name']!r} is used twice")
        skill = item.get("skill")
        if skill is not None and not isinstance(skill, str):
            raise ValueError(f"{key}.skill: expected a string")
        out.append(FollowupRule(texts["name"], texts["kind"], texts["reason"], timedelta(hours=delay),
                                timedelta(hours=window), skill or None))
    return tuple(out)


def _credits(data: Any) -> CreditRules:
    if not isinstance(data, Mapping):
        raise ValueError("outbound.credits: expected a table {dealer_share, finder_share, expert_share}")
    shares = {}
    for k, v in data.items():
        if k not in ("dealer_share", "finder_share", "expert_share"):
            raise ValueError(f"outbound.credits.{k}: unknown key (dealer_share, finder_share, expert_share)")
        shares[k] = _number(v, f"outbound.credits.{k}")
    try:
        return CreditRules(**shares)
    except ValueError as exc:
        raise ValueError(f"outbound.credits: {exc}") from None
