"""The simulated PBX's uniqueids are Asterisk's: the channel's creation time, then a per-process counter."""

from __future__ import annotations

from cti.sim.channels import IdAllocator


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t


def test_uniqueids_are_creation_time_then_a_counter() -> None:
    clock = FakeClock(1795372412.7)
    ids = IdAllocator(clock.now)
    assert ids.uniqueid() == "1795372412.0"
    assert ids.uniqueid() == "1795372412.1"
    clock.t = 1795372430.2
    assert ids.uniqueid() == "1795372430.2"  # the counter never restarts with the second


def test_a_restarted_simulator_at_a_later_time_gives_new_uniqueids() -> None:
    first = IdAllocator(FakeClock(1795372412.0).now)
    second = IdAllocator(FakeClock(1795372999.0).now)
    assert {first.uniqueid() for _ in range(5)}.isdisjoint(second.uniqueid() for _ in range(5))


def test_a_restarted_demo_goes_on_from_the_last_simulated_time(tmp_path) -> None:
    from cti.demo.simclock import WORKDAY_S, resume_epoch, save_epoch

    nine = 1795338000.0
    assert resume_epoch(tmp_path, nine) == nine  # first run
    save_epoch(tmp_path, nine + 1800.5)
    assert resume_epoch(tmp_path, nine) == nine + 1801.5
    save_epoch(tmp_path, nine + WORKDAY_S + 60)  # the working day is over: the next day's 09:00
    assert resume_epoch(tmp_path, nine) == nine + 86400
