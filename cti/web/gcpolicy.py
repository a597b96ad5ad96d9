"""Keep CPython's full collections off the pop path when thousands of websockets are connected.

A full (generation 2) collection scans every tracked object: with 5,000 connected consoles
that is a pause of several hundred milliseconds on a small box, and every pop waiting behind
it is that late (bench/pop_bench.py shows it). The connections' objects live as long as the
connections, so once a burst of connections has settled they are moved out of the collector's
scans with :func:`gc.freeze`: after every growth of ``grow_min`` connections (or 10 %), and once
the count has settled (no change over a check) after any smaller growth, so that the last few
hundred connections of a burst do not stay behind to be scanned. Reference counting still frees
them when a console disconnects; only reference cycles among frozen objects would wait, so every
``refresh_s`` (at a moment when no pop is ringing or connected, or anyway once overdue by another
``refresh_s``: a busy center is never idle) the heap is unfrozen, collected once, and frozen again.

:func:`tune_thresholds` keeps the collector's automatic passes short: young generations collected
often (each pause is short and delays at most the pop in flight) and full collections left to the
refresh.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Callable

import structlog

log = structlog.get_logger(__name__)


#: gen0 allocations, gen0 passes per gen1 pass, gen1 passes per (possible) full pass; CPython's are 700, 10, 10
THRESHOLDS = (700, 3, 100)


def tune_thresholds(thresholds: tuple[int, int, int] = THRESHOLDS) -> tuple[int, ...]:
    """Set the collector's thresholds; returns the previous ones.

    A gen1 pass scans up to gen0 x gen1 objects: 700 x 3 is a pause of a few hundred microseconds on
    a small box where CPython's 700 x 10 is several milliseconds (a pop arriving meanwhile waits). Full
    passes, which scan the whole unfrozen heap, are left to :class:`GcPolicy`'s refresh (CPython also
    holds them back until the objects promoted since the last one reach 25 % of the heap)."""
    old = gc.get_threshold()
    gc.set_threshold(*thresholds)
    return old


class GcPolicy:
    def __init__(self, clients: Callable[[], int], busy: Callable[[], bool], *, check_s: float = 5.0,
                 grow_min: int = 100, refresh_s: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.clients = clients
        self.busy = busy
        self.check_s = check_s
        self.grow_min = grow_min
        self.refresh_s = refresh_s
        self.clock = clock
        self.frozen_at_clients = 0
        self._last_clients = 0
        self.last_refresh = clock()
        self.freezes = 0
        self._task: asyncio.Task[None] | None = None

    def step(self) -> str | None:
        """One check: "freeze", "refresh" or None. Pure decision + the gc calls."""
        n = self.clients()
        last, self._last_clients = self._last_clients, n
        due = self.clock() - self.last_refresh
        if due >= self.refresh_s and (due >= 2 * self.refresh_s or not self.busy()):
            self.last_refresh = self.clock()
            t = time.perf_counter()
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self.frozen_at_clients = n
            log.info("web.gc_refresh", clients=n, pause_ms=round((time.perf_counter() - t) * 1000, 1))
            return "refresh"
        grown = n - self.frozen_at_clients
        if grown >= max(self.grow_min, self.frozen_at_clients // 10) or (grown > 0 and n == last):
            t = time.perf_counter()
            gc.collect(1)  # the young generations only: cheap
            gc.freeze()
            self.frozen_at_clients = n
            self.freezes += 1
            # (not gc.get_freeze_count(): it walks the whole frozen heap, tens of ms with 5,000 consoles)
            log.info("web.gc_freeze", clients=n, pause_ms=round((time.perf_counter() - t) * 1000, 1))
            return "freeze"
        if n < self.frozen_at_clients:
            self.frozen_at_clients = n  # shrink: the next growth is measured from here
        return None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.check_s)
            self.step()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="web-gc-policy")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
