"""The screen-pop hub: bus events in, one stream per logged-in agent out.

* ``call.ringing`` for interface X -> a ``screen_pop`` to the agent whose phone is X, and to
  nobody else. The customer part of the pop is loaded and JSON-encoded once per call, ahead of the
  ring (``agi.decision``, ``call.routed``, ``call.queued``: :mod:`cti.web.popcache`), so the pop at
  ringing needs no database round trip: the call part is encoded and concatenated.
* The cached parts of a customer are dropped when the customer changes: ``customer.updated``
  (console edit), ``call.wrapped_up``, ``call.ended`` (a new last call), ``ticket.created`` /
  ``ticket.escalated`` / ``ticket.sla_breached``.
* Follow-ups (``call_update``) change the pop's status: connected, ended, transferred, missed...
* The current pop of each interface (ringing or connected) is kept: a reconnecting agent gets it
  again at once.
* Supervisors and admins get every ``agent_state`` (never pops); an agent gets its own.
* One bus subscription for all clients; each client has a bounded queue (see :mod:`clients`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import async_sessionmaker

from cti.bus import EventBus
from cti.web.clients import Client
from cti.web.crosssell import Rule
from cti.web.popcache import Card, PopCache, dumps, part_of_unknown
from cti.web.pops import call_update, call_view

log = structlog.get_logger(__name__)

CallKey = tuple[str, str]  # (server, uniqueid)

#: topics whose payload's customer_id means "this customer's pop data changed"
CUSTOMER_CHANGES = ("customer.updated", "ticket.created", "ticket.updated", "ticket.escalated", "ticket.sla_breached")


@dataclass
class PopState:
    """The pop of one ringing/connected call at one interface; its frame is encoded once per status."""

    key: CallKey
    interface: str
    ringing: dict[str, Any]
    status: str = "ringing"
    customer_id: int | None = None
    call_json: str | None = None   # the encoded call part
    part: str | None = None        # the encoded customer part (popcache)
    lookup_failed: bool = False
    text: str | None = None
    _text_status: str = ""

    def frame(self) -> str | None:
        if self.part is None or self.call_json is None:
            return None
        if self.text is None or self._text_status != self.status:
            failed = ',"lookup_failed":true' if self.lookup_failed else ""
            self.text = (f'{{"type":"screen_pop","status":{dumps(self.status)},"call":{self.call_json},{self.part}'
                         f'{failed}}}')
            self._text_status = self.status
        return self.text

    @property
    def message(self) -> dict[str, Any] | None:
        frame = self.frame()
        return None if frame is None else json.loads(frame)


class PopHub:
    def __init__(self, bus: EventBus, sessionmaker: async_sessionmaker, *, rules: tuple[Rule, ...] = (),
                 live: Callable[[], Any] | None = None, timezone: str = "Asia/Shanghai",
                 max_queue: int = 256, clock: Callable[[], float] = time.time, cache_size: int = 4096,
                 cache_ttl_s: float = 300.0) -> None:
        self.bus = bus
        self.sessionmaker = sessionmaker
        self.rules = rules
        #: no cross-sell for a caller with an open complaint on the complaints line (http.crosssell_skip_complaints)
        self.quiet_complaints = True
        self._live = live or (lambda: None)
        self.tz = ZoneInfo(timezone)
        self.cache = PopCache(sessionmaker, rules=rules, timezone=timezone, maxsize=cache_size, ttl_s=cache_ttl_s,
                              clock=clock)
        self.max_queue = max_queue
        self.clock = clock
        self.agents: dict[str, Client] = {}        # interface -> client (role agent)
        self.by_agent_id: dict[int, Client] = {}   # every client, one per account
        self.supervisors: set[Client] = set()
        self.current: dict[str, PopState] = {}     # interface -> pop of the call ringing/connected there
        self._call_ifaces: dict[CallKey, set[str]] = {}
        self._popped: dict[str, deque[CallKey]] = {}
        self._answered: dict[str, deque[CallKey]] = {}  # interface -> calls it answered (newest last)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._sub: Any = None
        self.pops_sent = 0
        self.dropped_clients = 0

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._sub = self.bus.subscribe("call.", "agent.state", "agi.decision", *CUSTOMER_CHANGES, maxsize=100_000)
        self._runner = asyncio.create_task(self._run(), name="pop-hub")

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        tasks = [t for t in (self._runner, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.cache.close()
        await asyncio.gather(*(c.close(1001, "server stopping") for c in list(self.by_agent_id.values())),
                             return_exceptions=True)

    # -- clients ----------------------------------------------------------------------------
    async def register(self, client: Client) -> None:
        """Attach a freshly authenticated client (a previous one of the same account is replaced)."""
        old = self.by_agent_id.get(client.agent.id)
        if old is not None:
            self.unregister(old)
            await old.close(4000, "replaced by a newer connection")
        self.by_agent_id[client.agent.id] = client
        agent = client.agent
        if agent.role == "agent":
            if agent.interface:
                self.agents[agent.interface] = client
        else:
            self.supervisors.add(client)
        self._greet(client)

    def unregister(self, client: Client) -> None:
        if self.by_agent_id.get(client.agent.id) is client:
            del self.by_agent_id[client.agent.id]
        iface = client.agent.interface
        if iface and self.agents.get(iface) is client:
            del self.agents[iface]
        self.supervisors.discard(client)
        if client.close_reason == "overflow":
            self.dropped_clients += 1

    def _greet(self, client: Client) -> None:
        agent = client.agent
        client.offer(dumps({"type": "hello", "agent": agent.public(), "server_time": self.clock()}))
        live = self._live()
        now = self.clock()
        if agent.role != "agent":
            agents = [a.snapshot(now) for a in live.agents.agents.values()] if live is not None else []
            client.offer(dumps({"type": "agents", "agents": agents}))
            return
        if live is not None and agent.interface:
            a = live.agents.by_interface(agent.interface)
            if a is not None:
                client.offer(dumps({"type": "agent_state", **a.snapshot(now)}))
        st = self.current.get(agent.interface or "")
        if st is not None:
            frame = st.frame()
            if frame is not None:
                client.offer(frame)

    # -- queries for the REST side --------------------------------------------------------------
    def was_popped(self, interface: str | None, server: str, uniqueid: str) -> bool:
        return bool(interface) and (server, uniqueid) in self._popped.get(interface or "", ())

    def answered_by(self, interface: str | None, server: str, uniqueid: str) -> bool:
        """Whether ``interface`` answered the call (``call.answered``): a ring alone is not enough."""
        return bool(interface) and (server, uniqueid) in self._answered.get(interface or "", ())

    # -- the bus loop ---------------------------------------------------------------------------
    async def _run(self) -> None:
        n = 0
        async for msg in self._sub:
            try:
                self.dispatch(msg.topic, msg.payload)
            except Exception:
                log.exception("hub.dispatch_error", topic=msg.topic, uniqueid=msg.payload.get("uniqueid"))
            n += 1
            if n % 64 == 0:  # let the clients' writers drain during a burst
                await asyncio.sleep(0)

    def dispatch(self, topic: str, p: dict[str, Any]) -> None:
        if topic == "call.ringing":
            self._ringing(p)
        elif topic == "agent.state":
            self._agent_state(p)
        elif topic in ("agi.decision", "call.routed", "call.queued"):
            if p.get("customer_id") and p.get("uniqueid"):
                self.cache.prefetch((p.get("server") or "default", p["uniqueid"]), p["customer_id"])
        elif topic == "call.answered":
            if p.get("interface") and p.get("uniqueid"):
                answered = self._answered.setdefault(p["interface"], deque(maxlen=50))
                answered.append((p.get("server") or "default", p["uniqueid"]))
            self._update(p.get("interface"), p, "connected", keep=True)
        elif topic == "call.ring_stopped":
            reason = p.get("reason") or "noanswer"
            self._update(p.get("interface"), p, "missed" if reason == "noanswer" else reason, keep=False)
        elif topic == "call.completed":
            self._update(p.get("interface"), p, "ended", keep=False)
        elif topic == "call.transferred":
            self._update(p.get("interface"), p, "transferred", keep=False)
        elif topic == "call.ended":
            key = (p.get("server") or "default", p.get("uniqueid") or "")
            for iface in list(self._call_ifaces.get(key, ())):
                self._update(iface, p, "ended", keep=False)
            self._call_ifaces.pop(key, None)
            self.cache.discard(key)
            if p.get("customer_id"):  # the recorder writes this call: a new "last call" of the customer
                self._customer_changed(int(p["customer_id"]))
        elif topic == "call.wrapped_up":
            key = (p.get("server") or "default", p.get("uniqueid") or "")
            cid = self.cache.customer_of(key)
            if cid is not None:
                self._customer_changed(cid)
        elif topic in CUSTOMER_CHANGES:
            if p.get("customer_id"):
                self._customer_changed(int(p["customer_id"]))

    def _customer_changed(self, customer_id: int) -> None:
        """Drop the customer's cached pop parts; the pops on screen are re-read for replays."""
        self.cache.invalidate_customer(customer_id)
        for st in list(self.current.values()):
            if st.customer_id == customer_id and st.part is not None:
                task = asyncio.get_running_loop().create_task(self._refresh(st))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _refresh(self, st: PopState) -> None:
        try:
            card = await self.cache.card(st.key, st.customer_id or 0)
        except Exception as exc:
            log.warning("hub.customer_refresh_failed", uniqueid=st.key[1], error=str(exc))
            return
        if self.current.get(st.interface) is st and card.found:
            st.part = card.render(self.rules, self.clock(), self.tz, st.ringing.get("queue"), self.quiet_complaints)
            st.text = None

    def _agent_state(self, p: dict[str, Any]) -> None:
        text = dumps({"type": "agent_state", **p})
        for c in tuple(self.supervisors):
            c.offer(text)
        own = self.agents.get(p.get("interface") or "")
        if own is not None:
            own.offer(text)

    def _ringing(self, p: dict[str, Any]) -> None:
        iface = p.get("interface")
        if not iface or not p.get("uniqueid"):
            return
        key = (p.get("server") or "default", p["uniqueid"])
        customer_id = p.get("customer_id")
        st = PopState(key, iface, p, customer_id=int(customer_id) if customer_id else None)
        self.current[iface] = st
        self._call_ifaces.setdefault(key, set()).add(iface)
        popped = self._popped.setdefault(iface, deque(maxlen=50))
        if key not in popped:
            popped.append(key)
        if not customer_id:
            self._finish(st, None)
            return
        card = self.cache.card(key, customer_id)
        if card.done() and not card.cancelled() and card.exception() is None:
            self._finish(st, card.result())
            return
        task = asyncio.get_running_loop().create_task(self._finish_later(st, card))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish_later(self, st: PopState, task: asyncio.Task[Card]) -> None:
        card: Card | None
        try:
            card = await task
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise
            card = None
        except Exception as exc:
            log.error("hub.customer_lookup_failed", uniqueid=st.key[1], error=str(exc))
            card = None
            st.lookup_failed = True
        self._finish(st, card)

    def _finish(self, st: PopState, card: Card | None) -> None:
        if self.current.get(st.interface) is not st:
            return  # rang and stopped (or rang again) before the card was ready
        now = self.clock()
        live_call = None
        live = self._live()
        if live is not None:
            call = live.calls.get(st.key[1], st.key[0])
            if call is not None:
                live_call = call.snapshot(now)
        call = call_view(st.ringing, live_call, now)
        st.call_json = dumps(call)
        st.part = card.render(self.rules, now, self.tz, st.ringing.get("queue"), self.quiet_complaints) \
            if card is not None and card.found \
            else part_of_unknown(call)
        client = self.agents.get(st.interface)
        if client is not None:
            frame = st.frame()
            if frame is not None and client.offer(frame):
                self.pops_sent += 1

    def _update(self, iface: str | None, p: dict[str, Any], status: str, *, keep: bool) -> None:
        if not iface:
            return
        st = self.current.get(iface)
        key = (p.get("server") or "default", p.get("uniqueid") or "")
        if st is None or st.key != key:
            return
        st.status = status
        if not keep:
            del self.current[iface]
        if st.part is not None:
            client = self.agents.get(iface)
            if client is not None:
                client.offer(dumps(call_update(p, status)))
