"""Erlang A (Palm's M/M/n+M): Erlang C plus callers who hang up when their patience runs out.

Model: Poisson arrivals (rate λ), exponential handling (mean AHT, rate μ), ``n`` agents, first come first
served, and each waiting caller abandons after an exponential patience of mean ``patience_s`` (rate θ).
The number of callers in the system is a birth–death chain (birth λ, death ``min(k, n)·μ + max(k - n, 0)·θ``);
its stationary law is computed in log space and truncated where the tail is below 1e-18, so it stays exact
to machine precision for hundreds of Erlangs, for overloaded intervals (λ > nμ is fine here), and as θ → 0.

The *offered wait* V (what a caller would wait with infinite patience) has, beyond its atom at 0, the density
``f_V(s) = n·μ·π_n·exp(-n·μ·s + (λ/θ)·(1 - exp(-θ·s)))`` (Mandelbaum & Zeltyn, "The Palm/Erlang-A queue,
with applications to call centers", 2007); a caller is answered iff V is below their own patience, so
``P(answered within t) = P(V = 0) + ∫_0^t f_V(s)·e^{-θ s} ds``, which is an incomplete gamma function.

Denominators are *offered* calls throughout: ``answer_rate = answered / offered`` (the seed's 80% standard)
and ``service_level = answered within t / offered``. Every result carries ``model = "erlang_a"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate, special

from cti.stats.erlang import scheduled_agents
from cti.stats.profile import DEFAULT_PATIENCE_S as _PROFILE_PATIENCE_S

MODEL = "erlang_a"

#: Default mean patience of a caller, seconds: see :data:`cti.stats.profile.DEFAULT_PATIENCE_S`.
DEFAULT_PATIENCE_S = _PROFILE_PATIENCE_S

_TAIL_LOG = 45.0  # drop tail terms below e^-45 (~3e-20) of the largest term
_EPS = 1e-9


@dataclass(frozen=True)
class ErlangAResult:
    """Erlang A figures for ``agents`` on the phones (``scheduled`` adds shrinkage). Shares are of offered calls."""

    agents: int
    scheduled: int
    traffic: float
    patience_s: float
    wait_probability: float
    abandon_probability: float
    answer_rate: float
    service_level: float
    mean_wait_s: float
    asa_s: float
    occupancy: float
    sl_seconds: float
    model: str = MODEL


@dataclass(frozen=True)
class _Chain:
    log_pi_n: float  # log P(exactly n in system); -inf when n == 0
    p_immediate: float  # P(a caller finds a free agent)
    mean_queue: float  # E[callers waiting]


def _chain(n: int, lam: float, mu: float, theta: float) -> _Chain:
    """Stationary law of the M/M/n+M birth–death chain, summarised."""
    a = lam / mu
    # states 0..n: log(A^k / k!)
    k = np.arange(n + 1, dtype=float)
    with np.errstate(divide="ignore"):
        head = k * math.log(a) - special.gammaln(k + 1) if a > 0 else np.where(k == 0, 0.0, -np.inf)
    # states n+1, n+2, ...: multiply by λ / (nμ + jθ)
    log_lam = math.log(lam)
    peak = max(0.0, (lam - n * mu) / theta)
    tail_parts: list[np.ndarray] = []
    last = float(head[-1])
    run_max = float(np.max(head))
    j0 = 1
    block = max(256, int(peak) + int(50 * math.sqrt(lam / theta + 1.0)) + 64)
    while True:
        j = np.arange(j0, j0 + block, dtype=float)
        steps = log_lam - np.log(n * mu + j * theta)
        part = last + np.cumsum(steps)
        tail_parts.append(part)
        last = float(part[-1])
        run_max = max(run_max, float(np.max(part)))
        if j[-1] >= peak and last < run_max - _TAIL_LOG:
            break
        j0 += block
    tail = np.concatenate(tail_parts)
    log_norm = float(np.logaddexp(special.logsumexp(head), special.logsumexp(tail)))
    head_p = np.exp(head - log_norm)
    tail_p = np.exp(tail - log_norm)
    p_immediate = float(np.sum(head_p[:-1])) if n > 0 else 0.0
    mean_queue = float(np.dot(np.arange(1, tail_p.size + 1, dtype=float), tail_p))
    return _Chain(log_pi_n=float(head[-1] - log_norm) if n > 0 else -math.inf, p_immediate=p_immediate, mean_queue=mean_queue)


def _log_f_v(s: float, n: int, lam: float, mu: float, theta: float, log_pi_n: float) -> float:
    return math.log(n * mu) + log_pi_n - n * mu * s - (lam / theta) * math.expm1(-theta * s)


def _answered_after_wait(t: float, n: int, lam: float, mu: float, theta: float, log_pi_n: float) -> float:
    """∫_0^t f_V(s)·e^{-θ s} ds: a regularized incomplete gamma function while its arguments are moderate,
    adaptive quadrature of the log-space integrand (exact as θ → 0) otherwise."""
    if n == 0 or t <= 0:
        return 0.0
    a = n * mu / theta + 1.0
    x0 = lam / theta
    if a <= 1e4 and x0 <= 1e4:
        xt = x0 * math.exp(-theta * t) if math.isfinite(t) else 0.0
        p0 = float(special.gammainc(a, x0))
        if p0 > 0.5:
            diff = float(special.gammaincc(a, xt) - special.gammaincc(a, x0))
        else:
            diff = p0 - float(special.gammainc(a, xt))
        if p0 > 1e-200 and diff > 1e-12 * max(p0, 1e-300):
            log_pref = -math.log(theta) + x0 - a * math.log(x0) + float(special.gammaln(a))
            return math.exp(math.log(n * mu) + log_pi_n + log_pref + math.log(diff))

    def g(s: float) -> float:
        return math.exp(_log_f_v(s, n, lam, mu, theta, log_pi_n) - theta * s)

    total, _err = integrate.quad(g, 0.0, t, limit=200, epsabs=0.0, epsrel=1e-11)
    return total


def _asa(n: int, lam: float, mu: float, theta: float, log_pi_n: float, answered: float) -> float:
    """Mean wait of the callers who are answered (those answered at once count as 0 s)."""
    if n == 0 or answered <= 0:
        return math.inf

    def g(s: float) -> float:
        return s * math.exp(_log_f_v(s, n, lam, mu, theta, log_pi_n) - theta * s)

    total, _err = integrate.quad(g, 0.0, math.inf, limit=200)
    return total / answered


def evaluate(
    agents: int,
    calls: float,
    interval_s: float,
    aht_s: float,
    patience_s: float = DEFAULT_PATIENCE_S,
    sl_seconds: float = 20.0,
    shrinkage: float = 0.0,
) -> ErlangAResult:
    """Erlang A figures for ``agents`` on the phones, ``calls`` offered over ``interval_s`` seconds."""
    if agents < 0:
        raise ValueError("agents must not be negative")
    if interval_s <= 0 or aht_s <= 0 or patience_s <= 0:
        raise ValueError("interval_s, aht_s and patience_s must be positive")
    traffic = calls * aht_s / interval_s
    if calls <= 0:
        return ErlangAResult(agents, scheduled_agents(agents, shrinkage), 0.0, patience_s, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, sl_seconds)
    lam, mu, theta = calls / interval_s, 1.0 / aht_s, 1.0 / patience_s
    ch = _chain(agents, lam, mu, theta)
    p_wait = 1.0 - ch.p_immediate
    p_ab = min(1.0, theta * ch.mean_queue / lam)
    answered = 1.0 - p_ab
    within = min(answered, ch.p_immediate + _answered_after_wait(sl_seconds, agents, lam, mu, theta, ch.log_pi_n))
    return ErlangAResult(
        agents=agents,
        scheduled=scheduled_agents(agents, shrinkage),
        traffic=traffic,
        patience_s=patience_s,
        wait_probability=p_wait,
        abandon_probability=p_ab,
        answer_rate=answered,
        service_level=within,
        mean_wait_s=ch.mean_queue / lam,
        asa_s=_asa(agents, lam, mu, theta, ch.log_pi_n, answered),
        occupancy=min(1.0, traffic * answered / agents) if agents else 0.0,
        sl_seconds=sl_seconds,
    )


def _meets(
    n: int, lam: float, mu: float, theta: float, answer_target: float, sl_target: float | None, sl_seconds: float
) -> bool:
    ch = _chain(n, lam, mu, theta)
    answered = 1.0 - min(1.0, theta * ch.mean_queue / lam)
    if answered < answer_target - _EPS:
        return False
    if sl_target is None:
        return True
    within = ch.p_immediate + _answered_after_wait(sl_seconds, n, lam, mu, theta, ch.log_pi_n)
    return within >= sl_target - _EPS


def agents_required(
    calls: float,
    interval_s: float,
    aht_s: float,
    target_answer_rate: float = 0.8,
    patience_s: float = DEFAULT_PATIENCE_S,
    target_sl: float | None = None,
    sl_seconds: float = 20.0,
    shrinkage: float = 0.0,
) -> ErlangAResult:
    """Fewest agents whose Erlang A answer rate reaches ``target_answer_rate`` (and, if given, whose
    service level reaches ``target_sl`` within ``sl_seconds``). Answer rate and service level both grow
    with the number of agents, so the search may skip every n below the capacity bound n ≥ A·target."""
    if not 0 <= target_answer_rate < 1:
        raise ValueError("target_answer_rate must be in [0, 1)")
    if target_sl is not None and not 0 <= target_sl < 1:
        raise ValueError("target_sl must be in [0, 1)")
    if calls <= 0:
        return evaluate(0, 0.0, interval_s, aht_s, patience_s, sl_seconds, shrinkage)
    lam, mu, theta = calls / interval_s, 1.0 / aht_s, 1.0 / patience_s
    a = lam / mu
    # n agents answer at most n·μ calls per second, so the answer rate is at most n / A: start there and
    # walk up (usually a step or two), galloping then bisecting if the walk gets long.
    lo = max(0, math.ceil(a * target_answer_rate - 1e-9)) - 1  # invariant: lo fails (or is -1)
    hi = lo + 1
    step = 1
    while not _meets(hi, lam, mu, theta, target_answer_rate, target_sl, sl_seconds):
        lo, hi = hi, hi + step
        step *= 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _meets(mid, lam, mu, theta, target_answer_rate, target_sl, sl_seconds):
            hi = mid
        else:
            lo = mid
    return evaluate(hi, calls, interval_s, aht_s, patience_s, sl_seconds, shrinkage)
