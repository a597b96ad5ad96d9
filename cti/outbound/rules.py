"""Follow-up rules, pure: a business event (repair completed, ticket resolved, purchase, a call
whose wrap-up asks for a call back) becomes a follow-up request due after a delay.

Events come from the bus (``ticket.updated`` with action resolve, see scheduler.py) or from
outside systems (``POST /api/outbound/events``, ``cti outbound event``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable, Mapping

#: event kinds cti understands out of the box
EVENT_KINDS = ("repair.completed", "ticket.resolved", "product.purchased", "call.callback_requested")


@dataclass(frozen=True)
class BusinessEvent:
    kind: str
    customer_id: int
    #: identifies the event (ticket id, repair order ...): a rule fires once per (rule, key)
    key: str
    at: datetime
    detail: str = ""


@dataclass(frozen=True)
class FollowupRule:
    name: str
    kind: str
    reason: str
    delay: timedelta
    #: how long after being due the follow-up still makes sense (due_until)
    window: timedelta = timedelta(days=7)
    skill: str | None = None


@dataclass(frozen=True)
class FollowupRequest:
    customer_id: int
    reason: str
    due_at: datetime
    due_until: datetime
    source: str
    source_key: str
    detail: str = ""
    skill: str | None = None


DEFAULT_RULES: tuple[FollowupRule, ...] = (
    FollowupRule("repair-check", "repair.completed", "repair check", timedelta(days=3)),
    FollowupRule("complaint-check", "ticket.resolved", "complaint resolved: is the customer satisfied", timedelta(days=2)),
    FollowupRule("purchase-check", "product.purchased", "new purchase: satisfaction and needs", timedelta(days=14)),
    FollowupRule("callback", "call.callback_requested", "customer asked for a call back", timedelta(0),
                  window=timedelta(days=2)),
)


def requests_for(event: BusinessEvent, rules: Iterable[FollowupRule]) -> list[FollowupRequest]:
    """The follow-ups ``event`` asks for (one per matching rule)."""
    return [FollowupRequest(event.customer_id, r.reason, event.at + r.delay, event.at + r.delay + r.window,
                            "rule", f"{r.name}:{event.kind}:{event.key}", event.detail, r.skill)
            for r in rules if r.kind == event.kind]


def rules_from_mapping(items: Iterable[Mapping[str, object]]) -> tuple[FollowupRule, ...]:
    """``[[outbound.rules]] name, kind, reason, delay_hours, window_hours?, skill?``; ValueError names the bad one."""
    out = []
    for i, item in enumerate(items):
        try:
            out.append(FollowupRule(str(item["name"]), str(item["kind"]), str(item["reason"]),
                                    timedelta(hours=float(item["delay_hours"])),  # type: ignore[arg-type]
                                    timedelta(hours=float(item.get("window_hours", 24 * 7))),  # type: ignore[arg-type]
                                    str(item["skill"]) if item.get("skill") else None))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"rules[{i}]: {exc}") from None
    return tuple(out)


def ticket_event(payload: Mapping[str, object], now: datetime) -> BusinessEvent | None:
    """A ``ticket.updated`` bus payload -> ``ticket.resolved`` at the payload's ``at`` (else ``now``)."""
    if payload.get("action") != "resolve" or payload.get("customer_id") is None:
        return None
    at = payload.get("at")
    when = datetime.fromtimestamp(float(at), timezone.utc) if isinstance(at, (int, float)) else now  # type: ignore[arg-type]
    return BusinessEvent("ticket.resolved", int(payload["customer_id"]), str(payload.get("ticket_id")), when,  # type: ignore[arg-type]
                         f"ticket #{payload.get('ticket_id')}")
