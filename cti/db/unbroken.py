"""Let a database write finish when its caller is cancelled (daemon stop).

A transaction cut off inside aiosqlite (a task cancelled between its statements) can keep
SQLite's write lock until the connection is garbage-collected; the next writer, typically the
call recorder's final flush at stop, then waits out the busy timeout and fails with "database
is locked". :func:`unbroken` runs the write in its own task: a cancelled caller waits for it
(``grace_s`` at most) and is then cancelled as asked.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, TypeVar

T = TypeVar("T")


async def unbroken(aw: Awaitable[T], grace_s: float = 5.0) -> T:
    """Await ``aw`` to its end even if the caller is cancelled meanwhile (then re-raise the cancellation)."""
    task = asyncio.ensure_future(aw)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        done, _ = await asyncio.wait({task}, timeout=grace_s)
        if task in done and not task.cancelled():
            task.exception()  # retrieved: a failed write is the owner's to log, not the loop's
        raise
