"""TicketScheduler: the background loop that escalates overdue tickets and questions and delivers
the notification outbox. All state is in the database (deadlines, outbox), so a restart loses
nothing, and several schedulers (nodes) may run at once.

Wiring (cti/app.py)::

    scheduler = TicketScheduler(sessionmaker, bus, clock, Notifier(SmtpSettings(...)), policy=SlaPolicy(...))
    await scheduler.start()   # ... await scheduler.stop()

Tests call :meth:`run_once` with a clock they control.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import async_sessionmaker

from cti.tickets.escalation import QUESTIONS, TICKETS, EscalationReport, escalate_overdue
from cti.tickets.outbox import DeliveryReport, Sender, deliver_due
from cti.tickets.sla import Clock, SlaPolicy, utc

log = structlog.get_logger(__name__)


@dataclass
class PassReport:
    tickets: EscalationReport
    questions: EscalationReport
    delivery: DeliveryReport | None


class TicketScheduler:
    def __init__(self, sessionmaker: async_sessionmaker, bus: Any, clock: Clock, notifier: Sender | None, *,
                 policy: SlaPolicy | None = None, interval_s: float = 30.0) -> None:
        self.sm = sessionmaker
        self.bus = bus
        self.clock = clock
        self.notifier = notifier
        self.policy = policy or SlaPolicy()
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def run_once(self) -> PassReport:
        """One pass at the clock's current time: escalate, publish, deliver."""
        now = utc(self.clock())
        ticket_report = await escalate_overdue(self.sm, TICKETS, self.policy, now)
        question_report = await escalate_overdue(self.sm, QUESTIONS, self.policy, now)
        for report in (ticket_report, question_report):
            if self.bus is not None:
                for topic, payload in report.events:
                    self.bus.publish(topic, payload)
            report.events.clear()
        delivery = await deliver_due(self.sm, self.notifier, now) if self.notifier is not None else None
        return PassReport(ticket_report, question_report, delivery)

    def wake(self) -> None:
        """Run a pass now (e.g. after a new notification was queued)."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            self._wake.clear()  # before the pass: a wake() during the pass starts another one
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ticket_scheduler.pass_failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="ticket-scheduler")
            log.info("ticket_scheduler.started", interval_s=self.interval_s)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        close = getattr(self.notifier, "close", None)
        if close is not None:
            await close()
        log.info("ticket_scheduler.stopped")
