"""Stopping a task for sure, even when a library swallows its cancellation.

redis-py 8.2 can lose a ``CancelledError`` raised while a blocking command (``XREAD BLOCK``)
is being read: the task goes on with its loop and a plain ``task.cancel(); await task``
waits forever. :func:`cancel_and_wait` cancels again until the task is really done.
"""

from __future__ import annotations

import asyncio

import structlog

log = structlog.get_logger(__name__)


async def cancel_and_wait(task: asyncio.Task[object], *, grace: float = 0.5) -> None:
    """Cancel ``task`` and wait until it is done, re-cancelling every ``grace`` seconds
    if the cancellation was swallowed. The task's own exception, if any, is not raised."""
    task.cancel()
    while not task.done():
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            log.warning("task.cancel_swallowed", task=task.get_name())
            task.cancel()
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" warning


__all__ = ["cancel_and_wait"]
