"""A whole simulated day of the 800 line, staffed by the plan ``cti staffing plan`` proposes.

    /work/venv/bin/python bench/simulated_day.py [--days 20] [--seed 1] [--json]

What runs: the simulated PBX's own queue model (``cti.sim.queue.QueueSystem``: app_queue's member choice,
ring timeout and retry, ringinuse=no) driven on a *virtual clock* by a discrete-event loop, with the simulated
PBX's traffic and caller behaviour: Poisson arrivals from ``cti.sim.traffic.arrivals`` on the default 800-line
profile (2,000 calls/day, 8:00-20:30, peaks 9-10 and 14-15), exponential patience from the moment the caller
joins the queue (``SimConfig.patience_mean``, 120 s), log-normal talk time (sigma 0.5) around the AHT, and an
agent answer delay of N(2 s, 0.5 s) as ``SimPbx`` rings agents. The AGI/AMI path (sockets, dialplan, greeting)
is not simulated: staffing acts on the queue only, and the model makes a day take milliseconds instead of
12.5 hours / speed of real time. All calls go to one queue served by every agent on duty, as the plan assumes.

Staffing: ``cti.stats.staffing.plan_day`` with the defaults of ``cti staffing plan`` (seed day, 30-min
intervals, AHT 600 s, Erlang A for an 80% answer rate with 120 s mean patience, 12/8/6-hour shifts). Each
shift's agents join at its start and pause at its end (a call in progress is finished). The same days are
run with flat staffing (the plan's peak seats on duty all day) for comparison.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import math
import random
import statistics
import sys
import time as wall
from dataclasses import asdict, dataclass
from typing import Sequence

from cti.sim.config import SimConfig
from cti.sim.queue import QueueConfig, QueueSystem, Strategy
from cti.sim.traffic import DEFAULT_PROFILE, arrivals
from cti.stats.profile import SEED_AHT_S, SEED_DAILY_CALLS, seed_day
from cti.stats.staffing import StaffingParams, StaffingPlan, plan_day

QUEUE = "line"
DAY_OPEN_S = 8 * 3600
DAY_CLOSE_S = 20 * 3600 + 1800


@dataclass(frozen=True)
class DayResult:
    offered: int
    answered: int
    abandoned: int
    answered_within: int
    answer_rate: float
    service_level: float
    abandon_rate: float
    asa_s: float
    worst_half_hour_answer_rate: float
    busiest_half_hour: str
    peak_offered: int
    peak_answered: int


def simulate_day(roster: Sequence[tuple[float, float, int]], rng: random.Random, *, daily_calls: float,
                 aht_s: float, patience_s: float, answer_delay_s: float = 2.0, talk_sigma: float = 0.5,
                 sl_seconds: float = 20.0, strategy: Strategy = Strategy.RRMEMORY,
                 peak_slots: frozenset[int] = frozenset()) -> DayResult:
    """One day; ``roster`` = (start second of day, end second of day, agents). Times are seconds from midnight.
    ``peak_slots``: half hours of the day (0 = 00:00) whose calls are also counted apart (``peak_*``)."""
    ring_timeout = 15.0
    qs = QueueSystem([QueueConfig(QUEUE, strategy, timeout=ring_timeout, retry=2.0)], 0.0)
    heap: list[tuple[float, int, str, tuple]] = []
    seq = itertools.count()

    def at(t: float, kind: str, *data: object) -> None:
        heapq.heappush(heap, (t, next(seq), kind, data))

    n = 0
    for start, end, count in roster:
        ifaces = [f"PJSIP/{5000 + n + i}" for i in range(count)]
        n += count
        at(start, "shift_start", ifaces)
        at(end, "shift_end", ifaces)
    for uid, t in enumerate(arrivals(daily_calls, rng, day_start=0.0, profile=DEFAULT_PROFILE)):
        at(t, "arrive", str(uid))
    joined: dict[str, float] = {}
    rings: dict[str, int] = {}  # caller -> ring attempt being answered/timed out
    waits: dict[str, float] = {}  # answered caller -> wait
    abandoned: set[str] = set()
    wake_at: set[float] = set()
    mu = math.log(aht_s) - talk_sigma * talk_sigma / 2
    queue = qs.queue(QUEUE)

    def waiting(uid: str) -> bool:
        return any(c.uniqueid == uid for c in queue.callers)

    while heap:
        now, _, kind, data = heapq.heappop(heap)
        if kind == "arrive":
            (uid,) = data
            qs.join(QUEUE, uid, 0, now)
            joined[uid] = now
            at(now + rng.expovariate(1.0 / patience_s), "patience", uid)
        elif kind == "patience":
            (uid,) = data
            if waiting(uid):
                qs.abandon(QUEUE, uid, now)
                abandoned.add(uid)
                rings.pop(uid, None)
        elif kind == "answer":
            uid, iface, attempt = data
            if waiting(uid) and rings.get(uid) == attempt:
                qs.answer(QUEUE, uid, iface, now)
                waits[uid] = now - joined[uid]
                rings.pop(uid, None)
                at(now + rng.lognormvariate(mu, talk_sigma), "complete", iface)
        elif kind == "ring_timeout":
            uid, attempt = data
            if waiting(uid) and rings.get(uid) == attempt:
                qs.ring_timeout(QUEUE, uid, now)
                rings.pop(uid, None)
        elif kind == "complete":
            (iface,) = data
            qs.complete(QUEUE, iface, 0.0, now)
        elif kind == "shift_start":
            for iface in data[0]:
                qs.add_member(QUEUE, iface, iface, now=now)
        elif kind == "shift_end":
            for iface in data[0]:
                qs.pause(iface, True, reason="shift end", now=now)
        elif kind == "wake":
            wake_at.discard(now)
        for ring in qs.ring_decisions(now):
            attempt = next(seq)
            rings[ring.uniqueid] = attempt
            delays = {i: max(0.0, rng.gauss(answer_delay_s, 0.5)) for i in ring.interfaces}
            first = min(delays, key=lambda i: delays[i])
            if delays[first] < ring_timeout:
                at(now + delays[first], "answer", ring.uniqueid, first, attempt)
            else:
                at(now + ring_timeout, "ring_timeout", ring.uniqueid, attempt)
        wake = qs.next_wakeup(now)
        if wake is not None and wake not in wake_at:
            wake_at.add(wake)
            at(wake, "wake")
    offered = len(joined)
    within = sum(1 for w in waits.values() if w <= sl_seconds)
    per_slot: dict[int, list[int]] = {}
    for uid, t in joined.items():
        slot = int(t // 1800)
        per_slot.setdefault(slot, [0, 0])
        per_slot[slot][0] += 1
        per_slot[slot][1] += uid in waits
    worst = min(per_slot, key=lambda s: per_slot[s][1] / per_slot[s][0])
    busiest = max(per_slot, key=lambda s: per_slot[s][0])
    return DayResult(
        offered=offered,
        answered=len(waits),
        abandoned=len(abandoned),
        answered_within=within,
        answer_rate=len(waits) / offered,
        service_level=within / offered,
        abandon_rate=len(abandoned) / offered,
        asa_s=statistics.fmean(waits.values()) if waits else 0.0,
        worst_half_hour_answer_rate=per_slot[worst][1] / per_slot[worst][0],
        busiest_half_hour=f"{busiest // 2:02d}:{30 * (busiest % 2):02d}",
        peak_offered=sum(v[0] for k, v in per_slot.items() if k in peak_slots),
        peak_answered=sum(v[1] for k, v in per_slot.items() if k in peak_slots),
    )


def plan_roster(plan: StaffingPlan) -> list[tuple[float, float, int]]:
    out = []
    for s in plan.shifts.shifts:
        start = s.start.hour * 3600 + s.start.minute * 60
        out.append((float(start), start + s.length_h * 3600.0, s.count))
    return out


def summarize(days: list[DayResult]) -> dict[str, float]:
    offered = sum(d.offered for d in days)
    return {
        "days": len(days),
        "offered": offered,
        "answer_rate": sum(d.answered for d in days) / offered,
        "answer_rate_min_day": min(d.answer_rate for d in days),
        "answer_rate_max_day": max(d.answer_rate for d in days),
        "service_level": sum(d.answered_within for d in days) / offered,
        "abandon_rate": sum(d.abandoned for d in days) / offered,
        "asa_s": sum(d.asa_s * d.answered for d in days) / sum(d.answered for d in days),
        "worst_half_hour_answer_rate": min(d.worst_half_hour_answer_rate for d in days),
        "peak_answer_rate": sum(d.peak_answered for d in days) / max(1, sum(d.peak_offered for d in days)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=20, help="simulated days (different random seeds)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--daily-calls", type=float, default=SEED_DAILY_CALLS)
    ap.add_argument("--aht-s", type=float, default=SEED_AHT_S)
    ap.add_argument("--patience-s", type=float, default=SimConfig().patience_mean)
    ap.add_argument("--strategy", default="rrmemory", choices=[s.value for s in Strategy])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    params = StaffingParams(aht_s=args.aht_s, patience_s=args.patience_s)  # `cti staffing plan` defaults
    plan = plan_day([(s.start, s.calls) for s in seed_day(args.daily_calls, params.interval_min)], params)
    sp = plan.shifts
    roster = plan_roster(plan)
    flat = [(float(DAY_OPEN_S), float(DAY_CLOSE_S), sp.peak_coverage)]
    top = max(i.calls for i in plan.intervals)
    peak = frozenset((i.start.hour * 60 + i.start.minute) // 30 for i in plan.intervals if i.calls >= top - 1e-9)
    kw = dict(daily_calls=args.daily_calls, aht_s=args.aht_s, patience_s=args.patience_s,
              strategy=Strategy(args.strategy), peak_slots=peak)
    t0 = wall.perf_counter()
    planned_days = [simulate_day(roster, random.Random(args.seed * 1000 + d), **kw) for d in range(args.days)]
    elapsed = wall.perf_counter() - t0
    flat_days = [simulate_day(flat, random.Random(args.seed * 1000 + d), **kw) for d in range(args.days)]
    out = {
        "model": "cti.sim.queue.QueueSystem on a virtual clock (sim traffic, patience, talk and answer-delay "
                 "distributions); no AGI/AMI sockets",
        "plan": {
            "source": f"cti staffing plan (seed profile, {args.daily_calls:g} calls/day, AHT {args.aht_s:g} s, "
                      f"patience {args.patience_s:g} s, erlang_a 80% answer rate)",
            "shifts": [f"{s.count} x {s.length_h:g} h {s.start:%H:%M}-{s.end:%H:%M}" for s in sp.shifts],
            "peak_seats": sp.peak_coverage,
            "peak_erlang_a": plan.peak_erlang_a,
            "peak_erlang_c": plan.peak_erlang_c,
            "people": sp.people,
            "paid_hours": sp.paid_hours,
            "flat_paid_hours": sp.flat_paid_hours,
            "erlang_a_day_answer_rate": plan.day_answer_rate,
            "erlang_a_day_service_level": plan.day_service_level,
            "peak_half_hours": sorted(f"{k // 2:02d}:{30 * (k % 2):02d}" for k in peak),
            "erlang_a_peak_answer_rate": min(d.answer_rate for d in plan.delivered if d.calls >= top - 1e-9),
        },
        "planned": summarize(planned_days),
        "flat": summarize(flat_days),
        "seconds_per_day": elapsed / args.days,
    }
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0
    p, pl, fl = out["plan"], out["planned"], out["flat"]
    print(f"Simulated day: {out['model']}")
    print(f"Plan: {p['source']}")
    print("  shifts: " + "; ".join(p["shifts"]))
    print(f"  peak seats {p['peak_seats']} (Erlang A asks {p['peak_erlang_a']}, Erlang C asks {p['peak_erlang_c']}), "
          f"{p['people']} people, {p['paid_hours']:g} paid hours vs {p['flat_paid_hours']:g} flat "
          f"({p['peak_seats']} all day): {100 * (1 - p['paid_hours'] / p['flat_paid_hours']):.1f}% fewer")
    print(f"  Erlang A predicts: answer rate {100 * p['erlang_a_day_answer_rate']:.1f}%, "
          f"service level {100 * p['erlang_a_day_service_level']:.1f}% within 20 s; at the peak half hours "
          f"({', '.join(p['peak_half_hours'])}) answer rate {100 * p['erlang_a_peak_answer_rate']:.1f}%")
    for name, r in (("planned shifts", pl), (f"flat {p['peak_seats']} seats", fl)):
        print(f"Simulated, {name}, {r['days']} days, {r['offered']} calls: answer rate {100 * r['answer_rate']:.1f}% "
              f"(days {100 * r['answer_rate_min_day']:.1f}-{100 * r['answer_rate_max_day']:.1f}%), service level "
              f"{100 * r['service_level']:.1f}% within 20 s, abandoned {100 * r['abandon_rate']:.1f}%, "
              f"ASA {r['asa_s']:.0f} s; peak half hours {100 * r['peak_answer_rate']:.1f}% answered, worst single "
              f"half hour {100 * r['worst_half_hour_answer_rate']:.1f}%")
    print(f"({out['seconds_per_day'] * 1000:.0f} ms of CPU per simulated day)")
    ok = pl["answer_rate"] >= 0.8 and pl["answer_rate_min_day"] >= 0.8
    print("PASS: every simulated day answers at least 80% of calls" if ok else "FAIL: below 80% answered")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
