"""Erlang B and Erlang C (M/M/n, callers never give up), numerically stable for thousands of Erlangs.

No factorials and no powers: Erlang B comes from the classic recurrence
``B(0) = 1, B(k) = A·B(k-1) / (k + A·B(k-1))`` (every step is a number in (0, 1]), and Erlang C from
Erlang B: ``C = n·B / (n - A·(1 - B))``. Times are in seconds, traffic in Erlangs (calls × AHT / interval).

Every result says which model produced it (``model = "erlang_c"``): the seed's standard is an *answer
rate*, which Erlang C cannot give (it assumes nobody abandons); see :mod:`cti.stats.erlang_a` for that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MODEL = "erlang_c"

#: Float slack when turning a fractional head count into whole people (14 / 0.7 is 20.000000000000004).
_EPS = 1e-9


def traffic_intensity(calls: float, interval_s: float, aht_s: float) -> float:
    """Offered load in Erlangs: ``calls`` arriving over ``interval_s`` seconds, each needing ``aht_s`` seconds."""
    if interval_s <= 0:
        raise ValueError("interval_s must be positive")
    if calls < 0 or aht_s < 0:
        raise ValueError("calls and aht_s must not be negative")
    return calls * aht_s / interval_s


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability of ``agents`` servers offered ``traffic`` Erlangs (M/M/n/n)."""
    if agents < 0 or traffic < 0:
        raise ValueError("agents and traffic must not be negative")
    b = 1.0
    for k in range(1, agents + 1):
        ab = traffic * b
        b = ab / (k + ab)
    return b


def _c_from_b(agents: int, traffic: float, b: float) -> float:
    if traffic >= agents:
        return 1.0
    return agents * b / (agents - traffic * (1.0 - b))


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that a caller waits at all (M/M/n); 1.0 when ``traffic >= agents`` (the queue grows forever)."""
    if agents <= 0:
        return 1.0
    return _c_from_b(agents, traffic, erlang_b(agents, traffic))


def _sl_from_c(c: float, agents: int, traffic: float, aht_s: float, sl_seconds: float) -> float:
    if traffic >= agents:
        return 0.0
    if aht_s <= 0:
        return 1.0
    return max(0.0, 1.0 - c * math.exp(-(agents - traffic) * sl_seconds / aht_s))


def service_level(agents: int, traffic: float, aht_s: float, sl_seconds: float) -> float:
    """Share of calls answered within ``sl_seconds``: ``1 - C·exp(-(n - A)·t / AHT)``."""
    return _sl_from_c(erlang_c(agents, traffic), agents, traffic, aht_s, sl_seconds)


def average_speed_of_answer(agents: int, traffic: float, aht_s: float) -> float:
    """Mean wait over all calls (ASA), seconds: ``C·AHT / (n - A)``; ``inf`` when unstable."""
    if traffic >= agents:
        return math.inf
    return erlang_c(agents, traffic) * aht_s / (agents - traffic)


def occupancy(agents: int, traffic: float) -> float:
    """Share of the agents' time on calls (``A / n``, capped at 1)."""
    if agents <= 0:
        return 1.0
    return min(1.0, traffic / agents)


def scheduled_agents(agents_on_phones: int, shrinkage: float) -> int:
    """Agents to roster so that ``agents_on_phones`` remain after ``shrinkage`` (breaks, training, absence)."""
    if not 0 <= shrinkage < 1:
        raise ValueError("shrinkage must be in [0, 1)")
    return math.ceil(agents_on_phones / (1.0 - shrinkage) - _EPS)


@dataclass(frozen=True)
class ErlangCResult:
    """Erlang C figures for one staffing level. ``agents`` are on the phones; ``scheduled`` includes shrinkage."""

    agents: int
    scheduled: int
    traffic: float
    wait_probability: float
    service_level: float
    asa_s: float
    occupancy: float
    sl_seconds: float
    model: str = MODEL


def evaluate(agents: int, traffic: float, aht_s: float, sl_seconds: float = 20.0, shrinkage: float = 0.0) -> ErlangCResult:
    """All Erlang C figures for ``agents`` on the phones."""
    c = erlang_c(agents, traffic)
    return ErlangCResult(
        agents=agents,
        scheduled=scheduled_agents(agents, shrinkage),
        traffic=traffic,
        wait_probability=c,
        service_level=_sl_from_c(c, agents, traffic, aht_s, sl_seconds),
        asa_s=(c * aht_s / (agents - traffic)) if traffic < agents else math.inf,
        occupancy=occupancy(agents, traffic),
        sl_seconds=sl_seconds,
    )


def agents_required(
    traffic: float,
    aht_s: float,
    target_sl: float,
    sl_seconds: float,
    max_occupancy: float | None = None,
    shrinkage: float = 0.0,
    max_asa_s: float | None = None,
) -> ErlangCResult:
    """Fewest agents on the phones whose Erlang C service level reaches ``target_sl`` within ``sl_seconds``.

    Optional extra constraints: occupancy at most ``max_occupancy``, ASA at most ``max_asa_s``.
    ``scheduled`` in the result adds ``shrinkage``. One pass of the Erlang B recurrence: O(agents).
    """
    if traffic < 0 or aht_s < 0:
        raise ValueError("traffic and aht_s must not be negative")
    if not 0 <= target_sl < 1:
        raise ValueError("target_sl must be in [0, 1)")
    if max_occupancy is not None and not 0 < max_occupancy <= 1:
        raise ValueError("max_occupancy must be in (0, 1]")
    if traffic == 0:
        return evaluate(0, 0.0, aht_s, sl_seconds, shrinkage)
    n = int(math.floor(traffic)) + 1
    if max_occupancy is not None:
        n = max(n, math.ceil(traffic / max_occupancy - _EPS))
    b = erlang_b(n, traffic)
    while True:
        c = _c_from_b(n, traffic, b)
        sl = _sl_from_c(c, n, traffic, aht_s, sl_seconds)
        asa = c * aht_s / (n - traffic)
        if sl >= target_sl - _EPS and (max_asa_s is None or asa <= max_asa_s + _EPS):
            return evaluate(n, traffic, aht_s, sl_seconds, shrinkage)
        n += 1
        ab = traffic * b
        b = ab / (n + ab)


def agents_for_wait_probability(traffic: float, max_wait_probability: float) -> int:
    """Fewest agents whose probability of waiting (Erlang C) is at most ``max_wait_probability``."""
    n = int(math.floor(traffic)) + 1
    b = erlang_b(n, traffic)
    while _c_from_b(n, traffic, b) > max_wait_probability + _EPS:
        n += 1
        ab = traffic * b
        b = ab / (n + ab)
    return n


def lines_for_blocking(traffic: float, max_blocking: float) -> int:
    """Fewest circuits whose Erlang B blocking is at most ``max_blocking``."""
    n, b = 0, 1.0
    while b > max_blocking + _EPS * max_blocking:
        n += 1
        ab = traffic * b
        b = ab / (n + ab)
    return n
