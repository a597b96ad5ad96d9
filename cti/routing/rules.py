"""Skill-group routing: a pure function from what cti knows about a call to a queue decision.

Order of the rules (first match decides the queue; priority boosts add up):

1. a holiday (closed day) or outside business hours -> action ``afterhours``
2. the caller has an open complaint   -> ``complaints``, ``complaint_priority``
3. the number dialed is mapped        -> that number's queue
4. the caller picked an IVR digit     -> the digit's queue (an unknown digit -> default queue)
5. the caller owns exactly one of the appliances/mobile product lines -> that queue
6. otherwise                          -> action ``ivr``: the dialplan asks, route ``ivr`` decides
VIP callers get ``vip_priority`` on top, whatever the queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Mapping
from zoneinfo import ZoneInfo

from cti.config import RoutingConfig
from cti.routing.hours import Hours, is_open, parse_hours


@dataclass(frozen=True, slots=True)
class CallerFacts:
    """What routing and the greeting need to know about a known caller (one row of caller_facts)."""

    customer_id: int
    language: str = "zh"
    vip: bool = False
    open_complaint: bool = False
    product_lines: frozenset[str] = frozenset()
    greeting: str | None = None
    family_name: str = ""
    given_name: str = ""
    title: str = ""


@dataclass(frozen=True, slots=True)
class RouteDecision:
    queue: str
    priority: int
    action: str  # queue | ivr | afterhours
    route: str  # afterhours | complaint | did | ivr | product | menu | default
    language: str


@dataclass(frozen=True)
class RoutingRules:
    """RoutingConfig, pre-parsed once (hours, time zone) so each call does no parsing."""

    default_queue: str
    dids: Mapping[str, str]
    ivr: Mapping[str, str]
    base_priority: int
    vip_priority: int
    complaint_priority: int
    tz: ZoneInfo
    hours: Hours
    afterhours_queue: str
    default_language: str
    product_queues: Mapping[str, str] = field(
        default_factory=lambda: {"appliances": "appliances", "mobile": "mobile"}
    )
    #: Closed days (local dates in ``tz``): the whole day routes like outside business hours.
    holidays: frozenset[date] = frozenset()
    #: [(epoch second, closed)]: the last answer of :meth:`closed_at` (every call of a second shares it)
    _closed_memo: list[tuple[int, bool]] = field(default_factory=lambda: [(-1, False)], init=False, compare=False,
                                                 repr=False)

    def closed_at(self, now: datetime) -> bool:
        """True on a holiday or outside business hours at ``now`` (aware). Hours are whole
        minutes, so the answer holds for the whole second; it is computed once per second."""
        second = int(now.timestamp())
        memo = self._closed_memo[0]
        if memo[0] == second:
            return memo[1]
        local = now.astimezone(self.tz)
        closed = local.date() in self.holidays or not is_open(self.hours, local)
        self._closed_memo[0] = (second, closed)
        return closed

    @classmethod
    def from_config(cls, cfg: RoutingConfig) -> "RoutingRules":
        return cls(
            default_queue=cfg.default_queue,
            dids={_digits(k): v for k, v in cfg.dids.items()},
            ivr=dict(cfg.ivr),
            base_priority=cfg.base_priority,
            vip_priority=cfg.vip_priority,
            complaint_priority=cfg.complaint_priority,
            tz=ZoneInfo(cfg.timezone),
            hours=parse_hours(cfg.hours),
            afterhours_queue=cfg.afterhours_queue or cfg.default_queue,
            default_language=cfg.default_language,
        )


def _digits(number: str) -> str:
    if number.isascii() and number.isdigit():  # the usual dialed number: nothing to strip
        return number
    return "".join(ch for ch in number if ch.isdigit())


def resolve_route(
    caller: CallerFacts | None,
    dialed: str,
    rules: RoutingRules,
    now: datetime,
    ivr_choice: str | None = None,
) -> RouteDecision:
    """Decide queue, priority and dialplan action for one call. Pure; ``now`` must be aware."""
    language = caller.language if caller and caller.language in ("zh", "en") else rules.default_language
    boost = rules.vip_priority if caller and caller.vip else 0
    priority = rules.base_priority + boost

    if rules.closed_at(now):
        return RouteDecision(rules.afterhours_queue, priority, "afterhours", "afterhours", language)
    if caller and caller.open_complaint:
        return RouteDecision("complaints", priority + rules.complaint_priority, "queue", "complaint", language)
    did_queue = rules.dids.get(_digits(dialed)) if dialed else None
    if did_queue:
        return RouteDecision(did_queue, priority, "queue", "did", language)
    if ivr_choice is not None:
        queue = rules.ivr.get(ivr_choice.strip())
        return RouteDecision(queue or rules.default_queue, priority, "queue", "ivr" if queue else "default", language)
    if caller:
        owned = {rules.product_queues[line] for line in caller.product_lines if line in rules.product_queues}
        if len(owned) == 1:
            return RouteDecision(owned.pop(), priority, "queue", "product", language)
    # Ask the caller; CTI_QUEUE still carries the default so a failed second AGI still queues.
    return RouteDecision(rules.default_queue, priority, "ivr", "menu", language)
