"""The turn of password checks: argon2 is slow on purpose, so a login storm must not own the CPU.

At most ``concurrency`` checks run at once (worker threads), one per client address at a time, and
at most ``max_waiting`` attempts of one address wait for their turn (past it: :class:`Busy`, 429).
A storm from one address therefore holds one slot and queues behind itself; logins from
elsewhere take the other slot(s) at once.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")


class Busy(Exception):
    """Too many login attempts of one address are waiting already."""


class PasswordChecks:
    def __init__(self, concurrency: int = 2, max_waiting: int = 64) -> None:
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self._slots: asyncio.Semaphore | None = None  # made in the running loop
        self._by_address: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    async def run(self, address: str, check: Callable[[], Awaitable[T]]) -> T:
        """``await check()`` in its turn."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        entry = self._by_address.get(address)
        if entry is None:
            entry = self._by_address[address] = (asyncio.Lock(), [0])
        lock, waiting = entry
        if waiting[0] >= self.max_waiting:
            raise Busy(address)
        waiting[0] += 1
        try:
            async with lock, self._slots:
                return await check()
        finally:
            waiting[0] -= 1
            if waiting[0] == 0 and self._by_address.get(address) is entry:
                del self._by_address[address]
