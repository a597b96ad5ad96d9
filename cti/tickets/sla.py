"""SLA deadlines and the injected clock. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Union

#: A clock returns aware datetimes or epoch seconds (both accepted everywhere).
Clock = Callable[[], Union[datetime, float]]

DEFAULT_SLA_HOURS = 24.0


def utc(value: datetime | float) -> datetime:
    """An aware UTC datetime from a datetime (naive = UTC) or epoch seconds."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return datetime.fromtimestamp(float(value), tz=timezone.utc)


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class SlaPolicy:
    """How long an owner has before escalation: per ticket category, and for KB questions."""

    default_hours: float = DEFAULT_SLA_HOURS
    per_category: Mapping[str, float] = field(default_factory=dict)
    question_hours: float = DEFAULT_SLA_HOURS

    def __post_init__(self) -> None:
        for name, hours in [("default_hours", self.default_hours), ("question_hours", self.question_hours),
                            *((f"per_category.{k}", v) for k, v in self.per_category.items())]:
            if not isinstance(hours, (int, float)) or isinstance(hours, bool) or not 0 < hours <= 24 * 365:
                raise ValueError(f"sla {name}: expected hours in (0, 8760], got {hours!r}")

    def hours_for(self, category: str) -> float:
        return float(self.per_category.get(category, self.default_hours))

    def deadline(self, category: str, now: datetime | float) -> datetime:
        """When a ticket of ``category`` that starts waiting at ``now`` escalates."""
        return utc(now) + timedelta(hours=self.hours_for(category))

    def question_deadline(self, now: datetime | float) -> datetime:
        return utc(now) + timedelta(hours=self.question_hours)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "SlaPolicy":
        """From a config section: ``{default_hours, question_hours, categories: {name: hours}}``."""
        return cls(
            default_hours=float(data.get("default_hours", DEFAULT_SLA_HOURS)),
            per_category={str(k): float(v) for k, v in dict(data.get("categories", {})).items()},
            question_hours=float(data.get("question_hours", DEFAULT_SLA_HOURS)),
        )
