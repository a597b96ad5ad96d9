"""The contact policy, pure: may this follow-up be dialed now, and if not, why.

``check_dial(ctx, policy, now)`` returns a :class:`DialDecision` whose ``blocks`` name every
reason a dial is refused (code + a sentence for the agent). ``after_no_answer`` gives the
retry time (capped back-off) or None once the attempt limit is reached. No I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo

from cti.routing.hours import Hours, is_open, parse_hours


@dataclass(frozen=True)
class Cap:
    """At most ``count`` contacts per ``days`` days (a sliding window)."""

    count: int
    days: int

    def __str__(self) -> str:
        return f"{self.count} per {self.days} days"


def _every_day(span: str) -> dict[str, str]:
    return {str(d): span for d in range(7)}


@dataclass(frozen=True)
class ContactPolicy:
    caps: tuple[Cap, ...] = (Cap(1, 7), Cap(3, 30))
    #: reason -> caps replacing the defaults for a follow-up carrying that reason (all apply when merged)
    caps_by_reason: Mapping[str, tuple[Cap, ...]] = field(default_factory=dict)
    #: the call center's zone and outbound hours (weekday 0 = Monday -> "HH:MM-HH:MM")
    center_timezone: str = "Asia/Shanghai"
    center_hours: Mapping[str, str] = field(default_factory=lambda: _every_day("09:00-20:00"))
    #: a customer's zone and allowed hours when their contact preferences do not say
    customer_timezone: str = "Asia/Shanghai"
    customer_hours: Mapping[str, str] = field(default_factory=lambda: _every_day("09:00-20:00"))
    #: dials per follow-up before it is given up (exhausted)
    max_attempts: int = 3
    #: wait after the 1st, 2nd, ... unanswered dial (the last value repeats)
    retry_backoff: tuple[timedelta, ...] = (timedelta(hours=2), timedelta(hours=24))

    def caps_for(self, reasons: Iterable[str]) -> tuple[Cap, ...]:
        found: list[Cap] = []
        for r in reasons:
            found.extend(self.caps_by_reason.get(r, ()))
        return tuple(dict.fromkeys(found)) or self.caps


@dataclass(frozen=True)
class OptOut:
    recorded_at: datetime
    recorded_by: str
    reason: str = ""
    e164: str | None = None  # None: the whole customer


@dataclass(frozen=True)
class DialContext:
    """Everything the policy needs about one dial, read from the database at dial time."""

    followup_id: int
    customer_id: int
    status: str
    due_at: datetime
    reasons: tuple[str, ...]
    attempts: int
    next_attempt_at: datetime | None
    #: the number about to be dialed, and whose it is *now* (None: nobody's)
    phone_e164: str | None
    phone_owner_id: int | None
    #: times of past contacts with this customer (reached, any follow-up)
    contacts: tuple[datetime, ...] = ()
    opt_outs: tuple[OptOut, ...] = ()
    #: a dial of this customer is being placed right now (any follow-up)
    dial_in_progress: bool = False
    customer_timezone: str | None = None
    customer_hours: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Block:
    code: str
    message: str

    def public(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class DialDecision:
    blocks: tuple[Block, ...]

    @property
    def allowed(self) -> bool:
        return not self.blocks

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(b.code for b in self.blocks)

    def explain(self) -> str:
        return "; ".join(b.message for b in self.blocks) if self.blocks else "allowed"


def _fmt(t: datetime, zone: ZoneInfo) -> str:
    return t.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def cap_block(cap: Cap, contacts: Iterable[datetime], now: datetime, zone: ZoneInfo) -> Block | None:
    """A block when ``cap`` is reached at ``now``, saying when the oldest contact in the window ages out."""
    window = timedelta(days=cap.days)
    recent = sorted(t for t in contacts if now - window < t <= now)
    if len(recent) < cap.count:
        return None
    free_at = recent[-cap.count] + window
    return Block("contact_cap", f"contact cap {cap} reached (last contact {_fmt(recent[-1], zone)}); "
                                f"allowed again from {_fmt(free_at, zone)}")


def check_dial(ctx: DialContext, policy: ContactPolicy, now: datetime) -> DialDecision:
    """Every reason not to dial ``ctx`` at ``now`` (empty: dial)."""
    center_zone = ZoneInfo(policy.center_timezone)
    blocks: list[Block] = []
    if ctx.status != "open":
        blocks.append(Block("not_open", f"follow-up {ctx.followup_id} is {ctx.status}"))
    if ctx.phone_e164 is None:
        blocks.append(Block("no_phone", "the customer has no phone number on record"))
    elif ctx.phone_owner_id != ctx.customer_id:
        owner = "nobody" if ctx.phone_owner_id is None else "another customer"
        blocks.append(Block("wrong_customer_phone",
                            f"{ctx.phone_e164} is no longer a number of customer {ctx.customer_id} (it belongs to {owner})"))
    for o in ctx.opt_outs:
        if o.e164 is None:
            blocks.append(Block("opted_out", f"the customer opted out of calls on {_fmt(o.recorded_at, center_zone)} "
                                             f"(recorded by {o.recorded_by}{': ' + o.reason if o.reason else ''})"))
        elif o.e164 == ctx.phone_e164:
            blocks.append(Block("number_opted_out", f"{o.e164} is on the do-not-call list since "
                                                    f"{_fmt(o.recorded_at, center_zone)} (recorded by {o.recorded_by})"))
    if ctx.dial_in_progress:
        blocks.append(Block("dial_in_progress", "a call to this customer is being placed right now"))
    if ctx.status == "open":
        if now < ctx.due_at:
            blocks.append(Block("not_due", f"not due before {_fmt(ctx.due_at, center_zone)}"))
        if ctx.attempts >= policy.max_attempts:
            blocks.append(Block("attempts_exhausted", f"{ctx.attempts} dials already (limit {policy.max_attempts})"))
        elif ctx.next_attempt_at is not None and now < ctx.next_attempt_at:
            blocks.append(Block("retry_wait", f"no answer last time; next try from {_fmt(ctx.next_attempt_at, center_zone)}"))
    for cap in policy.caps_for(ctx.reasons):
        b = cap_block(cap, ctx.contacts, now, center_zone)
        if b is not None:
            blocks.append(b)
    if not is_open(_hours(policy.center_hours), now.astimezone(center_zone)):
        blocks.append(Block("center_hours", f"outside the call center's outbound hours "
                                            f"({_fmt(now, center_zone)})"))
    customer_zone = ZoneInfo(ctx.customer_timezone or policy.customer_timezone)
    hours = ctx.customer_hours if ctx.customer_hours else policy.customer_hours
    local = now.astimezone(customer_zone)
    if not is_open(_hours(hours), local):
        span = hours.get(str(local.weekday()))
        allowed = f"allowed {span}" if span else "no calls that day"
        blocks.append(Block("customer_hours", f"outside the customer's hours: it is {local:%a %H:%M} "
                                              f"{customer_zone.key} there ({allowed})"))
    return DialDecision(tuple(blocks))


def _hours(spec: Mapping[str, str]) -> Hours:
    return parse_hours(spec)


def after_no_answer(attempts: int, policy: ContactPolicy, now: datetime) -> datetime | None:
    """When to try again after the ``attempts``-th unanswered dial (1-based); None: give up."""
    if attempts >= policy.max_attempts:
        return None
    backoff = policy.retry_backoff[min(attempts, len(policy.retry_backoff)) - 1] if policy.retry_backoff else timedelta(0)
    return now + backoff


def validate_policy(policy: ContactPolicy) -> None:
    """Raise ValueError naming the first bad setting."""
    for cap in (*policy.caps, *(c for cs in policy.caps_by_reason.values() for c in cs)):
        if cap.count < 1 or cap.days < 1:
            raise ValueError(f"cap {cap}: count and days must be >= 1")
    for name in ("center_timezone", "customer_timezone"):
        try:
            ZoneInfo(getattr(policy, name))
        except Exception:
            raise ValueError(f"{name}: unknown zone {getattr(policy, name)!r}") from None
    for name in ("center_hours", "customer_hours"):
        try:
            parse_hours(getattr(policy, name))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    if policy.max_attempts < 1:
        raise ValueError("max_attempts: must be >= 1")


def policy_from_mapping(data: Mapping[str, object]) -> ContactPolicy:
    """Build a policy from a TOML table ``[outbound]`` (see docs in cti/outbound/http.py)."""
    kw: dict[str, object] = {}

    def caps(items: object) -> tuple[Cap, ...]:
        return tuple(Cap(int(c["count"]), int(c["days"])) for c in items)  # type: ignore[index, union-attr]

    if "caps" in data:
        kw["caps"] = caps(data["caps"])
    if "caps_by_reason" in data:
        kw["caps_by_reason"] = {str(k): caps(v) for k, v in data["caps_by_reason"].items()}  # type: ignore[union-attr]
    for key in ("center_timezone", "customer_timezone"):
        if key in data:
            kw[key] = str(data[key])
    for key in ("center_hours", "customer_hours"):
        if key in data:
            kw[key] = {str(k): str(v) for k, v in data[key].items()}  # type: ignore[union-attr]
    if "max_attempts" in data:
        kw["max_attempts"] = int(data["max_attempts"])  # type: ignore[arg-type]
    if "retry_backoff_minutes" in data:
        kw["retry_backoff"] = tuple(timedelta(minutes=float(m)) for m in data["retry_backoff_minutes"])  # type: ignore[union-attr]
    policy = ContactPolicy(**kw)  # type: ignore[arg-type]
    validate_policy(policy)
    return policy
