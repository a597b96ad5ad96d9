"""``GET /metrics``: the Prometheus exposition of the daemon (prometheus_client, a registry of our own).

Fed from the same live state as the wallboard:

- counters from the ``call.ended`` bus messages, per final queue: ``cti_calls_offered_total``,
  ``cti_calls_answered_total``, ``cti_calls_abandoned_total`` (definitions of :mod:`cti.stats.reports`);
- gauges read from ``AmiService.state`` at scrape time: ``cti_queue_waiting_callers``,
  ``cti_queue_longest_wait_seconds``, ``cti_agents{state}``, ``cti_queue_agents{queue,state}``;
- the FastAGI decision latency: ``cti_agi_decision_seconds{outcome}`` (histogram; ``Daemon._on_agi_session``
  calls :meth:`Metrics.observe_agi`);
- the AMI link: ``cti_ami_connected`` (0/1), ``cti_ami_connects_total``, ``cti_ami_reconnects_total``,
  ``cti_ami_link_events_total{state}``;
- websocket connections: ``cti_websocket_connections{stream="console"|"wallboard"}``.

Labels hold only queue names, agent states, AGI outcomes and link states: never a caller number, name,
uniqueid or agent. Queue names come from the PBX; more than :data:`MAX_QUEUES` distinct names fold into
``queue="other"`` so that a misbehaving peer cannot blow up the series count.

The endpoint has no authentication (the Prometheus norm): it is served on ``http.host``; bind that to a
private address, or filter ``/metrics`` at the reverse proxy, when the console is exposed more widely.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Iterable

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import choose_encoder
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from cti.stats.live import AGENT_STATES
from cti.stats.reports import ANSWERED, OFFERED

log = structlog.get_logger(__name__)

MAX_QUEUES = 64
AGI_OUTCOMES = ("ok", "timeout", "error", "unknown_route")
#: FastAGI decisions take milliseconds; the deadline is agi.deadline_ms (300 by default).
AGI_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)


class _LiveCollector(Collector):
    """Gauges computed from the live state when Prometheus scrapes (no bookkeeping between scrapes)."""

    def __init__(self, metrics: "Metrics") -> None:
        self.m = metrics

    def collect(self) -> Iterable[Any]:
        m = self.m
        now = m.clock()
        state = m.live()
        waiting = GaugeMetricFamily("cti_queue_waiting_callers", "Callers waiting in the queue now.", labels=["queue"])
        longest = GaugeMetricFamily("cti_queue_longest_wait_seconds", "Wait of the longest-waiting caller now.",
                                    labels=["queue"])
        q_agents = GaugeMetricFamily("cti_queue_agents", "Queue members by state now.", labels=["queue", "state"])
        agents = GaugeMetricFamily("cti_agents", "Logged-in agents by state now (each agent once).", labels=["state"])
        if state is not None:
            folded: dict[str, list[float]] = {}
            member_counts: dict[tuple[str, str], int] = {}
            for q in state.queues.queues.values():
                name = m.queue_label(q.name)
                w = folded.setdefault(name, [0.0, 0.0])
                w[0] += len(q.waiting)
                w[1] = max(w[1], q.longest_wait(now))
                for st in AGENT_STATES:
                    member_counts.setdefault((name, st), 0)
                for a in state.agents.in_queue(q.name):
                    st = a.state(now)
                    if st in AGENT_STATES:
                        member_counts[(name, st)] += 1
            for name, (n, lw) in sorted(folded.items()):
                waiting.add_metric([name], n)
                longest.add_metric([name], lw)
            for (name, st), n in sorted(member_counts.items()):
                q_agents.add_metric([name, st], n)
            counts = dict.fromkeys(AGENT_STATES, 0)
            for a in state.agents.agents.values():
                st = a.state(now)
                if st in counts:
                    counts[st] += 1
            for st, n in counts.items():
                agents.add_metric([st], n)
        yield waiting
        yield longest
        yield q_agents
        yield agents
        ami = m.ami
        if ami is not None:
            yield GaugeMetricFamily("cti_ami_connected", "1 while the AMI link is up and resynced.",
                                    value=1.0 if ami.connected else 0.0)
            connects = int(getattr(ami.link, "connects", 0))
            yield CounterMetricFamily("cti_ami_connects", "AMI logins since start.", value=connects)
            yield CounterMetricFamily("cti_ami_reconnects", "AMI logins after the first one (link lost, healed).",
                                      value=max(0, connects - 1))
        ws = GaugeMetricFamily("cti_websocket_connections", "Open websocket connections.", labels=["stream"])
        for stream, count in m.websocket_counts().items():
            ws.add_metric([stream], count)
        yield ws


class Metrics:
    """The daemon's metrics. ``observe_agi`` is called by the composition root for every FastAGI session."""

    def __init__(self, bus: Any = None, live: Callable[[], Any] | None = None, ami: Any = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.bus = bus
        self.live = live or (lambda: None)
        self.ami = ami
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        self._ws_sources: dict[str, Callable[[], int]] = {}
        self._queues: set[str] = set()
        r = self.registry
        self.offered = Counter("cti_calls_offered", "Calls that reached a queue, by final queue.", ["queue"], registry=r)
        self.answered = Counter("cti_calls_answered", "Offered calls an agent answered.", ["queue"], registry=r)
        self.abandoned = Counter("cti_calls_abandoned", "Offered calls the caller hung up in the queue.", ["queue"],
                                 registry=r)
        self.agi = Histogram("cti_agi_decision_seconds", "FastAGI: complete environment to decision.", ["outcome"],
                             buckets=AGI_BUCKETS, registry=r)
        self.link_events = Counter("cti_ami_link_events", "AMI link transitions.", ["state"], registry=r)
        for outcome in AGI_OUTCOMES:
            self.agi.labels(outcome)
        for st in ("connected", "disconnected", "resynced"):
            self.link_events.labels(st)
        r.register(_LiveCollector(self))
        self._task: asyncio.Task[None] | None = None
        self._sub: Any = None

    # -- feeding ----------------------------------------------------------------------------
    def queue_label(self, name: str | None) -> str:
        name = (name or "")[:64] or "none"
        if name in self._queues:
            return name
        if len(self._queues) >= MAX_QUEUES:
            return "other"
        self._queues.add(name)
        return name

    def observe_agi(self, elapsed_s: float, outcome: str) -> None:
        self.agi.labels(outcome if outcome in AGI_OUTCOMES else "error").observe(max(0.0, float(elapsed_s)))

    def call_ended(self, p: dict[str, Any]) -> None:
        outcome = p.get("outcome")
        if outcome not in OFFERED:
            return
        q = self.queue_label(p.get("queue"))
        self.offered.labels(q).inc()
        if outcome in ANSWERED:
            self.answered.labels(q).inc()
        elif outcome == "abandoned":
            self.abandoned.labels(q).inc()

    def link(self, p: dict[str, Any]) -> None:
        state = p.get("state")
        if state in ("connected", "disconnected", "resynced"):
            self.link_events.labels(state).inc()

    def count_websockets(self, stream: str, count: Callable[[], int]) -> None:
        """Report ``count()`` open sockets as ``cti_websocket_connections{stream=...}``."""
        self._ws_sources[stream] = count

    def websocket_counts(self) -> dict[str, int]:
        out = {}
        for stream, fn in self._ws_sources.items():
            try:
                out[stream] = int(fn())
            except Exception:  # a scrape must not fail because one source did
                log.exception("metrics.websocket_count_failed", stream=stream)
        return out

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self.bus is None:
            return
        self._sub = self.bus.subscribe("call.ended", "ami.link", maxsize=100_000)
        self._task = asyncio.create_task(self._run(), name="metrics")

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        async for msg in self._sub:
            try:
                if msg.topic == "call.ended":
                    self.call_ended(msg.payload)
                else:
                    self.link(msg.payload)
            except Exception:
                log.exception("metrics.update_failed", topic=msg.topic)

    # -- HTTP ---------------------------------------------------------------------------------
    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def handle(self, request: web.Request) -> web.Response:
        """The text format the scraper asks for (``Accept``: OpenMetrics or Prometheus text)."""
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = encoder(self.registry)
        return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})
