"""The simulated wall clock: epoch seconds that run ``speed`` times faster than real time."""

from __future__ import annotations

import asyncio
import time
from typing import Optional


class SimClock:
    """``now()`` is simulated epoch time; ``sleep(s)`` waits ``s`` simulated seconds."""

    def __init__(self, speed: float = 1.0, start_epoch: Optional[float] = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self._t0 = time.monotonic()
        self.epoch0 = time.time() if start_epoch is None else start_epoch

    def now(self) -> float:
        return self.epoch0 + (time.monotonic() - self._t0) * self.speed

    def real(self, sim_seconds: float) -> float:
        """Real seconds that ``sim_seconds`` of simulated time take."""
        return max(0.0, sim_seconds) / self.speed

    async def sleep(self, sim_seconds: float) -> None:
        await asyncio.sleep(self.real(sim_seconds))
