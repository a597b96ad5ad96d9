"""Limits of the websockets (``/ws``, ``/ws/wallboard``): sockets waiting for their auth message, and
each client's message budget.

* At most ``max_pending`` upgraded sockets may wait for their first-message authentication at
  once (each holds a descriptor for up to 5 s); past it the upgrade is refused with 503.
* Each connection may send ``rate`` messages per second with bursts of ``burst`` (a token bucket);
  past it the server closes with 1008 (policy violation): a client spinning on ``ping`` cannot
  keep the event loop busy for everyone else.
"""

from __future__ import annotations

import time
from typing import Callable

#: Seconds of the rate a client may send at once.
BURST_S = 5.0
CLOSE_POLICY = 1008


class MessageBudget:
    """Token bucket of one connection: ``spend()`` is False once the client sends faster than allowed."""

    __slots__ = ("rate", "burst", "tokens", "at", "clock")

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = burst
        self.at = clock()

    def spend(self) -> bool:
        tokens = self.tokens
        if tokens < 1.0:
            now = self.clock()
            tokens = min(self.burst, tokens + (now - self.at) * self.rate)
            self.at = now
            if tokens < 1.0:
                self.tokens = tokens
                return False
        self.tokens = tokens - 1.0
        return True


class WsGuard:
    def __init__(self, max_pending: int = 256, rate: float = 20.0) -> None:
        self.max_pending = max_pending
        self.rate = rate
        self.pending = 0

    def budget(self) -> MessageBudget:
        return MessageBudget(self.rate, max(1.0, self.rate * BURST_S))

    def enter_pending(self) -> bool:
        """Room for one more socket waiting for its auth message? (then :meth:`leave_pending` once)"""
        if self.pending >= self.max_pending:
            return False
        self.pending += 1
        return True

    def leave_pending(self) -> None:
        self.pending -= 1
