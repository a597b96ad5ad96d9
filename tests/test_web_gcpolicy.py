"""The GC policy of the web server: freeze after a burst of connections, refresh when idle."""

from __future__ import annotations

import gc

import pytest

from cti.web.gcpolicy import THRESHOLDS, GcPolicy, tune_thresholds


@pytest.fixture(autouse=True)
def _unfreeze():
    yield
    gc.unfreeze()


def test_freezes_after_a_burst_of_connections_and_refreshes_only_when_no_call_is_up():
    clients, busy, now = [0], [False], [0.0]
    p = GcPolicy(lambda: clients[0], lambda: busy[0], grow_min=100, refresh_s=3600, clock=lambda: now[0])
    assert p.step() is None
    clients[0] = 50
    assert p.step() is None                       # a few connections: nothing
    clients[0] = 5000
    junk = [object() for _ in range(1000)]       # noqa: F841  (tracked objects to freeze)
    gc.unfreeze()
    assert p.step() == "freeze" and gc.get_freeze_count() > 0 and p.frozen_at_clients == 5000
    clients[0] = 5300
    assert p.step() is None                       # +6 %: below the 10 % step
    clients[0] = 5600
    assert p.step() == "freeze"
    now[0] = 4000.0
    busy[0] = True
    assert p.step() is None                       # a pop is up: no full collection now
    busy[0] = False
    assert p.step() == "refresh" and gc.get_freeze_count() > 0


def test_freezes_the_tail_of_a_burst_once_the_count_settles():
    clients = [0]
    p = GcPolicy(lambda: clients[0], lambda: False, grow_min=100, refresh_s=3600, clock=lambda: 0.0)
    clients[0] = 5000
    assert p.step() == "freeze"
    clients[0] = 5300                             # +6 %: the burst may go on
    assert p.step() is None
    assert p.step() == "freeze" and p.frozen_at_clients == 5300   # unchanged over a check: settled
    assert p.step() is None                       # nothing new to freeze
    clients[0] = 5290
    assert p.step() is None and p.frozen_at_clients == 5290


def test_a_busy_center_still_gets_its_refresh_once_overdue():
    now = [0.0]
    p = GcPolicy(lambda: 10, lambda: True, refresh_s=3600, clock=lambda: now[0])
    p.step()
    now[0] = 3600.0
    assert p.step() != "refresh"                  # due, but a pop is up: wait for a quiet moment
    now[0] = 7200.0
    assert p.step() == "refresh" and p.last_refresh == 7200.0


def test_thresholds_are_set_and_the_old_ones_returned():
    before = gc.get_threshold()
    try:
        assert tune_thresholds((500, 2, 50)) == before
        assert gc.get_threshold() == (500, 2, 50)
        assert tune_thresholds() == (500, 2, 50) and gc.get_threshold() == THRESHOLDS
    finally:
        gc.set_threshold(*before)
