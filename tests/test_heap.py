"""The daemon's start-up heap is frozen out of the collector's scans, and thawed at stop."""

from __future__ import annotations

import gc

from cti.heap import freeze_startup_heap, thaw


def test_freeze_moves_the_live_heap_out_of_the_scans_and_thaw_returns_it() -> None:
    gc.unfreeze()
    keep = [{"customer": i} for i in range(1000)]
    try:
        frozen = freeze_startup_heap()
        assert frozen >= len(keep) and gc.get_freeze_count() == frozen
        # tracked objects in the generations the collector scans: the frozen ones are not among them
        assert not any(o is keep for o in gc.get_objects())
    finally:
        thaw()
    assert gc.get_freeze_count() == 0
    assert any(o is keep for o in gc.get_objects())
