"""The daemon's garbage-collector setting: its start-up heap is permanent, keep it out of the scans.

Once the daemon has started, the objects it holds for its whole life (modules, SQLAlchemy's
compiled structures, phonenumbers' metadata, routing rules) far outnumber what one call
allocates. CPython's full collections scan all of them, again and again, although none can ever
be garbage: on the FastAGI path that was a fifth of the server's CPU per call
(bench/agi_bench.py). :func:`freeze_startup_heap` moves them to the permanent generation with
:func:`gc.freeze`; reference counting still frees them, only cycles among them wait until
:func:`thaw` (called at stop).
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect once, then exclude every surviving object from later collections; returns their count."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def thaw() -> None:
    """Return the frozen objects to the collector (at stop: a test process starts many daemons)."""
    gc.unfreeze()
