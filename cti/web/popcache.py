"""The customer part of screen-pops, prefetched per call before the phone rings.

The routing decision (bus ``agi.decision``, then ``call.routed``/``call.queued``) names the caller's
customer seconds before ``call.ringing``. :class:`PopCache` loads the customer's record then, in ONE
database round trip (:func:`fetch_pop_customer`: the customer row plus phones, products, open complaints
and last calls as JSON arrays built by the database), renders the customer part of the pop once and
keeps it, JSON-encoded, for the call. At ring time the hub only encodes the call part and concatenates.

* keyed by call ``(server, uniqueid)``; an index customer_id -> calls serves invalidation;
* the last calls are the customer's own, newest first, without the call being popped: the recorder may
  have written its open row (and those of legs sharing its linkedid) before the card is loaded;
* bounded (``maxsize`` calls, oldest dropped first) with a TTL (``ttl_s``): an entry older than that is
  loaded again on use;
* :meth:`PopCache.invalidate_customer` drops every entry of a customer (console edit, wrap-up, new
  complaint, end of a call): the next pop is loaded fresh.
* loads started ahead of the ring are batched: the customers asked for within ``batch_window_s``
  (at most ``batch_max``) are read in one query (each database round trip costs the event loop far
  more than the rows: with aiosqlite a query is ~4 thread hand-offs). A ring waiting for a card
  flushes the batch at once; a ring nothing was prefetched for loads its card alone, at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Text, and_, bindparam, cast, func, literal_column, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker

from cti.db.tables import OPEN_TICKET_STATES, agents, calls, customer_phones, customers, products, tickets
from cti.web.crosssell import Rule, quiet_for_complaint, suggest
from cti.web.pops import _iso, calls_view, complaints_view, customer_view

log = structlog.get_logger(__name__)

CallKey = tuple[str, str]  # (server, uniqueid)


def dumps(msg: Any) -> str:
    return json.dumps(msg, ensure_ascii=False, separators=(",", ":"), default=_iso)


# ------------------------------------------------------------------ one-query load
_STATEMENTS: dict[str, Any] = {}


def _statement(dialect: str) -> Any:
    """SELECT customer columns + 4 JSON arrays (phones, products, open complaints, last calls)."""
    stmt = _STATEMENTS.get(dialect)
    if stmt is not None:
        return stmt
    pg = dialect == "postgresql"
    obj = func.json_build_object if pg else func.json_object

    def agg(x: Any) -> Any:
        return func.coalesce(func.json_agg(x), literal_column("'[]'::json")) if pg else func.json_group_array(x)

    cid = customers.c.id  # every list is correlated to the customer row: one query serves many customers
    phones = select(agg(obj("id", customer_phones.c.id, "e164", customer_phones.c.e164,
                            "kind", customer_phones.c.kind))).where(customer_phones.c.customer_id == cid)
    owned = select(agg(obj("id", products.c.id, "product_line", products.c.product_line, "model", products.c.model,
                           "serial", products.c.serial, "purchased_on", products.c.purchased_on))
                   ).where(products.c.customer_id == cid)
    complaints = select(agg(obj("id", tickets.c.id, "category", tickets.c.category,
                                "description", tickets.c.description, "status", tickets.c.status,
                                "sla_deadline", tickets.c.sla_deadline))
                        ).where(and_(tickets.c.customer_id == cid, tickets.c.status.in_(OPEN_TICKET_STATES)))
    # the calls being popped are nobody's "last call": the recorder may already have written their open
    # rows (and those of other legs of theirs: same server and linkedid) before the pop is loaded
    c2, c3 = calls.alias("recent"), calls.alias("ringing")
    # servers and uniqueids apart too: SQLite finds rows by the (server, uniqueid) index for these, never
    # for the pairs (a scan of every call)
    ringing = and_(c3.c.server.in_(bindparam("skip_servers", expanding=True)),
                   c3.c.uniqueid.in_(bindparam("skip_uniqueids", expanding=True)),
                   tuple_(c3.c.server, c3.c.uniqueid).in_(bindparam("skip", expanding=True)))
    linked = select(c3.c.server, c3.c.linkedid).where(ringing, c3.c.linkedid.is_not(None))
    recent = (select(c2.c.id)
              .where(c2.c.customer_id == cid,
                     tuple_(c2.c.server, c2.c.uniqueid).not_in(bindparam("skip", expanding=True)),
                     tuple_(c2.c.server, func.coalesce(c2.c.linkedid, "")).not_in(linked))
              .order_by(c2.c.started_at.desc(), c2.c.id.desc())
              .limit(bindparam("n"))
              .correlate(customers))  # two levels down: without this it would be the newest calls of anyone
    last = (select(agg(obj("started_at", calls.c.started_at, "queue", calls.c.queue, "outcome", calls.c.outcome,
                          "disposition", calls.c.disposition, "notes", calls.c.notes,
                          "agent_id", calls.c.agent_id, "agent_name", agents.c.display_name,
                          "agent_interface", calls.c.agent_interface)))
            .select_from(calls.outerjoin(agents, agents.c.id == calls.c.agent_id)).where(calls.c.id.in_(recent)))
    stmt = select(customers.c.id, customers.c.family_name, customers.c.given_name, customers.c.title,
                  customers.c.language, customers.c.vip, customers.c.dealer, customers.c.email,
                  *(cast(q.scalar_subquery(), Text).label(name) for q, name in
                    ((phones, "phones"), (owned, "products"), (complaints, "open_tickets"), (last, "last_calls")))
                  ).where(customers.c.id.in_(bindparam("ids", expanding=True)))
    _STATEMENTS[dialect] = stmt
    return stmt


def _ts(v: Any) -> datetime | None:
    if v is None:
        return None
    d = datetime.fromisoformat(v)
    return d.replace(tzinfo=timezone.utc) if d.tzinfo is None else d.astimezone(timezone.utc)


def _day(v: Any) -> date | None:
    return None if v is None else date.fromisoformat(v[:10])


_FAR = datetime.max.replace(tzinfo=timezone.utc)
_OLD = datetime.min.replace(tzinfo=timezone.utc)


_NO_CALL: CallKey = ("", "")  # matches no call (uniqueids are never empty)

Row = tuple[Any, ...]  # (id, family, given, title, language, vip, dealer, email, 4 JSON texts): no GC-tracked parts


async def fetch_pop_rows(conn: AsyncConnection, customer_ids: list[int], recent_calls: int = 5,
                         exclude: Iterable[CallKey] = ()) -> dict[int, Row]:
    """Several customers' pop data in one round trip: id -> flat tuple of plain values (see :func:`record`).

    ``exclude``: the calls being popped, left out of the last calls (with the legs sharing their linkedid).
    """
    # never an empty list: SQLAlchemy renders an empty tuple NOT IN as false on PostgreSQL
    skip = list(exclude) or [_NO_CALL]
    result = await conn.execute(_statement(conn.dialect.name),
                                {"ids": [int(c) for c in customer_ids], "n": recent_calls, "skip": skip,
                                 "skip_servers": list({k[0] for k in skip}), "skip_uniqueids": [k[1] for k in skip]})
    return {row[0]: tuple(row) for row in result}


async def fetch_pop_row(conn: AsyncConnection, customer_id: int, recent_calls: int = 5,
                        exclude: Iterable[CallKey] = ()) -> Row | None:
    """One customer's pop data in one round trip (None: no such customer)."""
    return (await fetch_pop_rows(conn, [customer_id], recent_calls, exclude)).get(int(customer_id))


async def fetch_pop_customer(conn: AsyncConnection, customer_id: int, recent_calls: int = 5,
                             exclude: Iterable[CallKey] = ()) -> dict[str, Any] | None:
    """What a pop shows of a customer, in one round trip; the shape of ``get_customer`` (minus greeting/timestamps)."""
    row = await fetch_pop_row(conn, customer_id, recent_calls, exclude)
    return None if row is None else record(row)


def record(row: Row) -> dict[str, Any]:
    """The customer dict of a :func:`fetch_pop_row` row.

    Lists come back in get_customer's order: phones by id, products newest purchase first (undated last),
    open complaints by SLA deadline (none last), last calls newest first.
    """
    cid, family, given, title, language, vip, dealer, email, phones_j, products_j, tickets_j, calls_j = row
    phones = sorted(json.loads(phones_j or "[]"), key=lambda p: p["id"])
    owned = json.loads(products_j or "[]")
    for p in owned:
        p["purchased_on"] = _day(p["purchased_on"])
    owned.sort(key=lambda p: p["id"])
    owned.sort(key=lambda p: p["purchased_on"] or date.min, reverse=True)
    for x in (*phones, *owned):
        del x["id"]
    complaints = json.loads(tickets_j or "[]")
    for t in complaints:
        t["sla_deadline"] = _ts(t["sla_deadline"])
    complaints.sort(key=lambda t: (t["sla_deadline"] or _FAR, t["id"]))
    last = json.loads(calls_j or "[]")
    for c in last:
        c["started_at"] = _ts(c["started_at"])
    last.sort(key=lambda c: c["started_at"] or _OLD, reverse=True)
    return {"id": cid, "family_name": family, "given_name": given, "title": title,
            "language": language, "vip": bool(vip), "dealer": dealer, "email": email,
            "phones": phones, "products": owned, "open_tickets": complaints, "last_calls": last}


# ------------------------------------------------------------------ the rendered part
class Card:
    """A customer's pop data and the customer part of the pop, JSON-encoded once.

    Only plain values are kept (the row's strings, the encoded part): thousands of cached cards add
    nothing for the cyclic garbage collector to scan on the event loop.
    """

    __slots__ = ("customer_id", "row", "loaded_at", "part", "valid_until", "part_queue")

    def __init__(self, customer_id: int, row: Row | None, loaded_at: float) -> None:
        self.customer_id = customer_id
        self.row = row
        self.loaded_at = loaded_at
        self.part = ""            # '"customer":{..},"unknown_caller":false,...,"suggestion":..' (no braces)
        self.valid_until = 0.0    # the part says "overdue" and has a dated suggestion: redo it after this
        self.part_queue: tuple[str | None, bool] = (None, True)  # the (queue, quiet setting) the part is for

    @property
    def found(self) -> bool:
        return self.row is not None

    @property
    def customer(self) -> dict[str, Any] | None:
        """The customer record (parsed from the row on each call)."""
        return None if self.row is None else record(self.row)

    def render(self, rules: tuple[Rule, ...], now: float, tz: ZoneInfo, queue: str | None = None,
               quiet_complaints: bool = True) -> str:
        """The encoded customer part as of ``now`` (re-rendered from the row, never the database) for a
        call in ``queue``: no cross-sell for an open complaint on the complaints line (``quiet_complaints``)."""
        if self.row is None:
            return ""
        if self.part and now < self.valid_until and self.part_queue == (queue, quiet_complaints):
            return self.part
        self.part_queue = (queue, quiet_complaints)
        c = record(self.row)
        local = datetime.fromtimestamp(now, tz)
        midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tz).timestamp()
        later = [t["sla_deadline"].timestamp() for t in c["open_tickets"]
                 if t["sla_deadline"] is not None and t["sla_deadline"].timestamp() >= now]
        self.valid_until = min([midnight, *later])
        part = {"customer": customer_view(c), "unknown_caller": False, "new_customer": None,
                "last_calls": calls_view(c["last_calls"]), "open_complaints": complaints_view(c["open_tickets"], now),
                "suggestion": None if quiet_for_complaint(queue, c["open_tickets"], quiet_complaints)
                else suggest(c["products"], rules, local.date())}
        self.part = dumps(part)[1:-1]
        return self.part


@dataclass(slots=True)
class _Entry:
    key: CallKey
    customer_id: int
    task: asyncio.Task[Card]
    started: float
    urgent: bool = False  # a ring waits for this card: load it alone, or flush its batch now


class PopCache:
    """Per-call cache of pop customer parts (bounded, TTL, invalidated by customer_id)."""

    def __init__(self, sessionmaker: async_sessionmaker, *, rules: tuple[Rule, ...] = (),
                 timezone: str = "Asia/Shanghai", maxsize: int = 4096, ttl_s: float = 300.0,
                 batch_window_s: float = 0.05, batch_max: int = 64, clock: Callable[[], float] = time.time) -> None:
        self.sessionmaker = sessionmaker
        self.rules = rules
        self.tz = ZoneInfo(timezone)
        self.maxsize = maxsize
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: OrderedDict[CallKey, _Entry] = OrderedDict()
        self._by_customer: dict[int, set[CallKey]] = {}
        self._recent: OrderedDict[CallKey, int] = OrderedDict()  # call -> customer, kept after the entry goes
        self.batch_window_s = batch_window_s
        self.batch_max = batch_max
        self._batch: dict[int, list[asyncio.Future[Card]]] = {}
        self._batch_calls: list[CallKey] = []  # the calls of the batch (left out of its last calls)
        self._flush_at: asyncio.TimerHandle | None = None
        self._batches: set[asyncio.Task[None]] = set()
        self.loads = 0    # cards loaded
        self.queries = 0  # database round trips for them
        self.hits = 0     # rings served from a loaded card

    def __len__(self) -> int:
        return len(self._entries)

    def customer_of(self, key: CallKey) -> int | None:
        """The customer a recent call was for (wrap-ups name the call, not the customer)."""
        return self._recent.get(key)

    def peek(self, key: CallKey) -> Card | None:
        """The call's card if it is loaded and fresh (no load started)."""
        e = self._entries.get(key)
        if e is None or not e.task.done() or self._stale(e):
            return None
        return e.task.result()

    # -- use ------------------------------------------------------------------------------
    def prefetch(self, key: CallKey, customer_id: int) -> asyncio.Task[Card]:
        """Start loading the call's card (once; again if expired, failed or for another customer)."""
        customer_id = int(customer_id)
        e = self._entries.get(key)
        if e is not None and e.customer_id == customer_id and not self._stale(e):
            return e.task
        if e is not None:
            self._drop(key)
        e = _Entry(key, customer_id, None, self.clock())  # type: ignore[arg-type]
        e.task = asyncio.get_running_loop().create_task(self._load(customer_id, e), name=f"pop-card-{key[1]}")
        self._entries[key] = e
        self._by_customer.setdefault(customer_id, set()).add(key)
        self._recent[key] = customer_id
        self._recent.move_to_end(key)
        while len(self._recent) > self.maxsize * 4:
            self._recent.popitem(last=False)
        while len(self._entries) > self.maxsize:
            self._drop(next(iter(self._entries)))
        return e.task

    def card(self, key: CallKey, customer_id: int) -> asyncio.Task[Card]:
        """The call's card for a ring now: the prefetched one, or a load that jumps the prefetch queue."""
        task = self.prefetch(key, customer_id)
        e = self._entries[key]
        e.urgent = True
        if task.done():
            self.hits += 1
        elif e.customer_id in self._batch:  # queued for the next batch: read it now
            self._flush()
        return task

    def _stale(self, e: _Entry) -> bool:
        if e.task.done() and (e.task.cancelled() or e.task.exception() is not None):
            return True
        return self.clock() - e.started > self.ttl_s

    async def _load(self, customer_id: int, e: _Entry) -> Card:
        """The card of one call: read alone when a ring already waits, else with the next batch.

        One task and one future per prefetch, nothing else: every object allocated here lives until
        the batch returns and feeds the cyclic collector, whose pauses delay the pops."""
        self.loads += 1
        if e.urgent:  # a ring waits and nothing was prefetched: alone, now
            self.queries += 1
            async with self.sessionmaker() as session:
                row = await fetch_pop_row(await session.connection(), customer_id, exclude=(e.key,))
            card = Card(customer_id, row, self.clock())
            card.render(self.rules, self.clock(), self.tz)
            return card
        fut = self._enqueue(customer_id, e.key)
        try:
            return await fut
        finally:
            fut.cancel()

    def _enqueue(self, customer_id: int, key: CallKey) -> asyncio.Future[Card]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Card] = loop.create_future()
        self._batch.setdefault(customer_id, []).append(fut)
        self._batch_calls.append(key)
        if len(self._batch) >= self.batch_max:
            self._flush()
        elif self._flush_at is None:
            self._flush_at = loop.call_later(self.batch_window_s, self._flush)
        return fut

    def _flush(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        batch, self._batch = self._batch, {}
        keys, self._batch_calls = self._batch_calls, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._read(batch, keys), name="pop-card-batch")
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _read(self, batch: dict[int, list[asyncio.Future[Card]]], keys: list[CallKey]) -> None:
        """One query for the batch, then each customer's part is encoded (once for all its calls), with a
        turn of the event loop between customers: a batch never holds up a ring arriving meanwhile.

        The calls of the batch are left out of every card's last calls: the calls of one customer in a
        batch share its card (two lines of one customer: neither ringing call is a "last call")."""
        wanted = [cid for cid, futs in batch.items() if any(not f.done() for f in futs)]
        rows: dict[int, Row] = {}
        try:
            if wanted:
                self.queries += 1
                async with self.sessionmaker() as session:
                    rows = await fetch_pop_rows(await session.connection(), wanted, exclude=keys)
        except BaseException as exc:
            for futs in batch.values():
                for f in futs:
                    if not f.done():
                        f.set_exception(exc if isinstance(exc, Exception) else RuntimeError("pop card batch cancelled"))
            if not isinstance(exc, Exception):
                raise
            return
        try:
            for n, (cid, futs) in enumerate(batch.items()):
                if all(f.done() for f in futs):
                    continue
                if n:
                    await asyncio.sleep(0)  # the loop polls its sockets: a ring read meanwhile goes out first
                card = Card(cid, rows.get(cid), self.clock())
                card.render(self.rules, self.clock(), self.tz)  # encode once, off the ring path
                for f in futs:
                    if not f.done():
                        f.set_result(card)
        finally:  # cancelled between customers: nobody is left waiting
            for futs in batch.values():
                for f in futs:
                    f.cancel()

    # -- invalidation ---------------------------------------------------------------------
    def _drop(self, key: CallKey) -> None:
        e = self._entries.pop(key, None)
        if e is None:
            return
        keys = self._by_customer.get(e.customer_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_customer[e.customer_id]
        if not e.task.done() and not e.urgent:
            e.task.cancel()  # nobody waits for it (a ring waiting keeps its load)

    def discard(self, key: CallKey) -> None:
        """The call is over: forget its card."""
        self._drop(key)

    def invalidate_customer(self, customer_id: int) -> int:
        """Drop every cached card of this customer; returns how many."""
        keys = list(self._by_customer.get(int(customer_id), ()))
        for key in keys:
            self._drop(key)
        if keys:
            log.debug("popcache.invalidated", customer_id=customer_id, calls=len(keys))
        return len(keys)

    async def close(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        tasks = [e.task for e in self._entries.values()] + list(self._batches)
        self._entries.clear()
        self._by_customer.clear()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def part_of_unknown(call: Mapping[str, Any]) -> str:
    """The customer part of an unknown caller's pop (the number ready for a new customer)."""
    number = call.get("caller_e164") or call.get("caller_number")
    return dumps({"customer": None, "unknown_caller": True,
                  "new_customer": {"phones": number, "language": call.get("lang") or "zh"},
                  "last_calls": [], "open_complaints": [], "suggestion": None})[1:-1]
