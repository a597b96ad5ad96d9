"""The GC policy of the web server: freeze after a burst of connections, refresh when idle."""

from __future__ import annotations

import gc

import pytest

from cti.web.gcpolicy import GcPolicy


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
