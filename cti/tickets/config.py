"""The ``[tickets]`` config section, ready for cti/config.py's Settings (plain field types, as its loader expects).

Wiring for the lead::

    # cti/config.py
    from cti.tickets.config import TicketsConfig
    class Settings: ... tickets: TicketsConfig = field(default_factory=TicketsConfig)
    # cti/app.py
    self.tickets = build_scheduler(settings.tickets, self.sessionmaker, self.bus)   # start() / stop()

cti.toml::

    [tickets]
    sla_hours = 24
    sla_categories = { billing = "48", safety = "4" }   # CTI_TICKETS_SLA_CATEGORIES='{"billing": "48"}'
    question_sla_hours = 24
    scan_interval_s = 30
    smtp_host = "mail.example.com"
    smtp_sender = "cti@example.com"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from cti.tickets.notify import Notifier, SmtpSettings
from cti.tickets.scheduler import TicketScheduler
from cti.tickets.sla import Clock, SlaPolicy, system_clock


@dataclass(frozen=True)
class TicketsConfig:
    #: SLA of a ticket before it escalates to the owner's manager (hours).
    sla_hours: float = 24.0
    #: Per-category SLA in hours (TOML table of strings or numbers; env: JSON object).
    sla_categories: Mapping[str, str] = field(default_factory=dict)
    #: SLA of a back-office question before it escalates (hours).
    question_sla_hours: float = 24.0
    #: How often the scheduler looks for overdue tickets and pending notifications.
    scan_interval_s: float = 30.0
    #: Outgoing e-mail; empty host: e-mail notifications are retried, then given up (webhooks still work).
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_sender: str = "cti@localhost"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    webhook_timeout_s: float = 10.0

    def policy(self) -> SlaPolicy:
        """The SLA policy; ValueError names the bad key."""
        categories: dict[str, float] = {}
        for name, hours in self.sla_categories.items():
            try:
                categories[str(name).strip().lower()] = float(hours)
            except (TypeError, ValueError):
                raise ValueError(f"tickets.sla_categories.{name}: expected hours, got {hours!r}") from None
        try:
            return SlaPolicy(default_hours=self.sla_hours, per_category=categories,
                             question_hours=self.question_sla_hours)
        except ValueError as exc:
            raise ValueError(f"tickets: {exc}") from None

    def notifier(self) -> Notifier:
        if not 0 < self.smtp_port < 65536:
            raise ValueError(f"tickets.smtp_port: expected 1-65535, got {self.smtp_port}")
        return Notifier(SmtpSettings(self.smtp_host, self.smtp_port, self.smtp_sender, self.smtp_username,
                                     self.smtp_password, self.smtp_starttls), webhook_timeout_s=self.webhook_timeout_s)


def build_scheduler(cfg: TicketsConfig, sessionmaker: Any, bus: Any, clock: Clock = system_clock) -> TicketScheduler:
    """The daemon's TicketScheduler from the ``[tickets]`` section."""
    if cfg.scan_interval_s <= 0:
        raise ValueError(f"tickets.scan_interval_s: expected > 0, got {cfg.scan_interval_s}")
    return TicketScheduler(sessionmaker, bus, clock, cfg.notifier(), policy=cfg.policy(),
                           interval_s=cfg.scan_interval_s)
