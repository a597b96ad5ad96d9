"""The turn of password checks: argon2 is slow on purpose, so a login storm must not own the CPU.

At most ``concurrency`` checks run at once, one per client address at a time, and at most
``max_waiting`` attempts of one address wait for their turn (past it: :class:`Busy`, a 429 before
any database lookup). A storm from one address therefore holds one slot and queues behind itself;
logins from elsewhere take the other slot(s) at once. The checks run in worker threads of their
own at a lower CPU priority (nice :data:`HASH_NICE`; argon2's lane threads inherit it): on a small
box the event loop (FastAGI, pops) keeps its share of the CPU while hashes run.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")

HASH_NICE = 10


class Busy(Exception):
    """Too many login attempts of one address are waiting already."""


def _lower_priority() -> None:
    """Worker-thread initializer: nice this thread (Linux: per thread; children inherit)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICE)
    except (AttributeError, OSError):  # pragma: no cover - not Linux / not allowed
        pass


class PasswordChecks:
    def __init__(self, concurrency: int = 2, max_waiting: int = 16) -> None:
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self._slots: asyncio.Semaphore | None = None  # made in the running loop
        self._pool: ThreadPoolExecutor | None = None
        self._by_address: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def admit(self, address: str) -> None:
        """Raise :class:`Busy` when ``address`` has ``max_waiting`` attempts in line already (cheap, first)."""
        entry = self._by_address.get(address)
        if entry is not None and entry[1][0] >= self.max_waiting:
            raise Busy(address)

    async def run(self, address: str, lookup: Callable[[], Awaitable[T]], check: Callable[[T], bool]) -> bool:
        """In ``address``'s turn: ``await lookup()`` (the stored hash), then ``check(it)`` in a worker thread."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="cti-argon2",
                                            initializer=_lower_priority)
        entry = self._by_address.get(address)
        if entry is None:
            entry = self._by_address[address] = (asyncio.Lock(), [0])
        lock, waiting = entry
        if waiting[0] >= self.max_waiting:
            raise Busy(address)
        waiting[0] += 1
        try:
            async with lock:
                found = await lookup()
                async with self._slots:
                    return await asyncio.get_running_loop().run_in_executor(self._pool, check, found)
        finally:
            waiting[0] -= 1
            if waiting[0] == 0 and self._by_address.get(address) is entry:
                del self._by_address[address]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            self._slots = None
