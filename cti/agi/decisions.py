"""First decision wins: a FastAGI session for a uniqueid already decided cannot re-decide that call.

The only later decision a call may get is the one it was asked for: after ``action = ivr`` the
dialplan runs ``AGI(.../ivr,DIGIT)`` on the same channel, for the same caller. Any other second
session with that uniqueid (a replay, a forged peer) still gets its answer on the wire, but
nothing is published: the agent's pop and the call record keep the first decision. Entries age
out after :data:`TTL_S` (a call is decided in its first seconds); the table is bounded.
"""

from __future__ import annotations

import time
from typing import Callable

import structlog

log = structlog.get_logger(__name__)

#: How long a decided uniqueid is remembered (also the lifetime of a decision no AMI channel confirms).
TTL_S = 120.0
MAX_ENTRIES = 200_000


class DecisionLedger:
    """``admit(server, uniqueid, customer_id, action)``: may this decision be published? (pure; clock given)"""

    def __init__(self, ttl_s: float = TTL_S, max_entries: int = MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self.refused = 0
        #: (server, uniqueid) -> (decided at, customer_id, action); insertion order = age order
        self._seen: dict[tuple[str, str], tuple[float, int | None, str | None]] = {}

    def _expire(self, now: float) -> None:
        seen = self._seen
        limit = now - self.ttl_s
        while seen:
            key = next(iter(seen))
            if seen[key][0] > limit and len(seen) < self.max_entries:
                return
            del seen[key]

    def admit(self, server: str, uniqueid: str, customer_id: int | None, action: str | None) -> bool:
        now = self.clock()
        self._expire(now)
        key = (server, uniqueid)
        prev = self._seen.get(key)
        if prev is not None and not (prev[2] == "ivr" and prev[1] == customer_id):
            self.refused += 1
            log.warning("agi_decision_ignored", uniqueid=uniqueid[:64], reason="already_decided",
                        previous_action=prev[2])
            return False
        self._seen.pop(key, None)  # re-inserted at the end: the age order stays right
        self._seen[key] = (now, customer_id, action)
        return True
