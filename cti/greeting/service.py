"""Greetings made ahead of time, off the call path: a bounded queue, a few workers, a backlog sweeper.

Who calls what:
- the customer repository calls :meth:`GreetingService.request` when a customer is added, renamed or
  imported (after clearing ``customers.greeting`` to NULL on a rename);
- the FastAGI handler plays ``customers.greeting`` when set, else :meth:`GreetingService.generic_sound`,
  and calls :meth:`request` for that customer (cheap, never blocks, never fails);
- the composition root awaits :meth:`start` and :meth:`stop`.

``customers.greeting`` holds the bare sound name (``"greet-42-1a2b3c4d5e6f"``, or ``"greet-generic-zh"`` for a
customer without a usable name); ``Playback()`` gets it behind the prefix (:meth:`GreetingService.playback_name`).
A worker writes it only while the customer's current name still produces the greeting that was
synthesized (compare-and-set on the name columns), so a rename in between never gets the old voice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from cti.config import GreetingConfig
from cti.db.tables import customers
from cti.db.unbroken import unbroken
from cti.greeting.naming import GENERIC_GREETING, fixed_prompts, sound_name
from cti.greeting.store import SoundStore
from cti.greeting.synth import SynthesisError
from cti.greeting.text import greeting_text

log = structlog.get_logger(__name__)

_CUSTOMER_FILE = re.compile(r"greet-(\d{1,19})-[0-9a-f]{12}\.wav")

#: Consecutive synthesis failures after which a sweep gives up (a missing tool fails every row).
MAX_SWEEP_FAILURES = 5


@dataclass(frozen=True)
class Greeting:
    """What a customer's greeting is: the text, the voice and the sound name (``None`` text: generic)."""

    text: str | None
    voice: str
    name: str


@dataclass(frozen=True)
class _Job:
    customer_id: int
    language: str
    greeting: Greeting


class GreetingService:
    """Synthesizes customers' greetings in the background and records them in ``customers.greeting``."""

    def __init__(
        self,
        cfg: GreetingConfig,
        sessionmaker: async_sessionmaker,
        *,
        workers: int = 2,
        max_processes: int = 2,
        queue_size: int = 10_000,
        timeout: float = 30.0,
        sweep_interval: float | None = 600.0,
        sweep_batch: int = 500,
    ) -> None:
        self.cfg = cfg
        self.store = SoundStore(cfg.sounds_dir, cfg, max_processes=max_processes, timeout=timeout)
        self._sessionmaker = sessionmaker
        self._workers = workers
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=queue_size)
        self._pending: set[tuple[int, str]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._sweep_interval = sweep_interval
        self._sweep_batch = sweep_batch
        self._sweep_now = asyncio.Event()
        #: Requests dropped because the queue was full (the sweeper catches them later).
        self.dropped = 0

    # --- names -------------------------------------------------------------------------------

    def playback_name(self, name: str) -> str:
        """What ``Playback()`` gets for sound ``name``: ``<sound_prefix>/<name>``."""
        prefix = self.cfg.sound_prefix.strip("/")
        return f"{prefix}/{name}" if prefix else name

    def voice(self, language: str) -> str:
        return self.cfg.voice_en if language == "en" else self.cfg.voice_zh

    def generic_sound(self, language: str) -> str:
        """The generic greeting for ``language`` (Mandarin for anything but ``en``), ready for ``Playback()``."""
        return self.playback_name(GENERIC_GREETING["en" if language == "en" else "zh"])

    def greeting_for(self, customer_id: int, family_name: Any, given_name: Any, title: Any, language: str) -> Greeting:
        """This customer's greeting: personalized when the name allows, else the generic one."""
        text = greeting_text(family_name, given_name, title, language)
        voice = self.voice(language)
        if text is None:
            return Greeting(None, voice, GENERIC_GREETING["en" if language == "en" else "zh"])
        return Greeting(text, voice, sound_name(customer_id, text, voice))

    # --- requests (hot path: synchronous, cheap, never raises) ----------------------------------

    def request(self, customer_id: int, family_name: Any, given_name: Any, title: Any, language: str) -> bool:
        """Queue a greeting for this customer; False when it was dropped (queue full) or invalid."""
        try:
            greeting = self.greeting_for(customer_id, family_name, given_name, title, language)
        except (ValueError, TypeError):
            log.warning("greeting_request_invalid", customer_id=repr(customer_id)[:32])
            return False
        key = (customer_id, greeting.name)
        if key in self._pending:
            return True
        try:
            self._queue.put_nowait(_Job(customer_id, language, greeting))
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("greeting_request_dropped", customer_id=customer_id, queued=self._queue.qsize())
            return False
        self._pending.add(key)
        return True

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Build the fixed sounds, then start the workers and the backlog sweeper."""
        if self._tasks:
            return
        try:
            await self.ensure_generic()
        except SynthesisError as exc:
            log.error("greeting_generic_failed", error=str(exc))
        self._tasks = [asyncio.create_task(self._work(), name=f"greeting-worker-{i}") for i in range(self._workers)]
        if self._sweep_interval is not None:
            self._tasks.append(asyncio.create_task(self._sweep_loop(), name="greeting-sweeper"))

    async def stop(self) -> None:
        """Cancel the workers and the sweeper and wait for them (running tools are killed, temp files removed)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        while not self._queue.empty():  # unprocessed requests: their greeting stays NULL for the sweeper
            self._queue.get_nowait()
            self._queue.task_done()
        self._pending.clear()

    async def drain(self) -> None:
        """Wait until every queued request has been processed (needs :meth:`start`)."""
        await self._queue.join()

    def schedule_sweep(self) -> None:
        """Ask the sweeper to run now (after a bulk import) instead of at its next interval."""
        self._sweep_now.set()

    # --- work ----------------------------------------------------------------------------------

    async def ensure_generic(self) -> list[str]:
        """Synthesize the generic greetings, IVR menu and after-hours message (rebuilt when their text changes)."""
        names = []
        for prompt in fixed_prompts(self.cfg.generic_zh, self.cfg.generic_en):
            await self.store.publish(prompt.name, prompt.text, self.voice(prompt.language), replace=True)
            names.append(self.playback_name(prompt.name))
        log.info("greeting_fixed_ready", count=len(names))
        return names

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._process(job)
            except SynthesisError as exc:
                log.warning("greeting_synthesis_failed", customer_id=job.customer_id, error=str(exc))
            except Exception:
                log.exception("greeting_job_failed", customer_id=job.customer_id)
            finally:
                self._pending.discard((job.customer_id, job.greeting.name))
                self._queue.task_done()

    async def build(self, customer_id: int, family_name: Any, given_name: Any, title: Any, language: str) -> bool:
        """Synthesize and record this customer's greeting now, bypassing the queue (CLI, imports, tests)."""
        greeting = self.greeting_for(customer_id, family_name, given_name, title, language)
        return await self._process(_Job(customer_id, language, greeting))

    async def _process(self, job: _Job) -> bool:
        g = job.greeting
        if g.text is not None:
            await self.store.publish(g.name, g.text, g.voice)
        return await self._record(job.customer_id, g.name)

    async def _record(self, customer_id: int, sound: str) -> bool:
        """Set ``customers.greeting`` to sound name ``sound`` if the customer's current name still yields it."""
        return await unbroken(self._record_tx(customer_id, sound))

    async def _record_tx(self, customer_id: int, sound: str) -> bool:
        c = customers.c
        async with self._sessionmaker.begin() as session:
            row = (
                await session.execute(
                    select(c.family_name, c.given_name, c.title, c.language, c.greeting).where(c.id == customer_id)
                )
            ).one_or_none()
            if row is None:
                log.info("greeting_customer_gone", customer_id=customer_id)
                return False
            current = self.greeting_for(customer_id, row.family_name, row.given_name, row.title, row.language)
            if current.name != sound:
                log.info("greeting_stale", customer_id=customer_id)
                return False
            if row.greeting == sound:
                return True
            result = await session.execute(
                update(customers)
                .where(
                    c.id == customer_id,
                    c.family_name == row.family_name,
                    c.given_name == row.given_name,
                    c.title == row.title,
                    c.language == row.language,
                )
                .values(greeting=sound)
            )
            updated = result.rowcount == 1
        log.info("greeting_recorded" if updated else "greeting_stale", customer_id=customer_id, sound=sound)
        return updated

    async def sweep_backlog(self, limit: int | None = None) -> int:
        """Give a greeting to customers whose ``greeting IS NULL``, in batches, after queued requests.

        Returns how many customers got one. Stops early after repeated synthesis failures.
        """
        c = customers.c
        last_id, seen, recorded, failures = -1, 0, 0, 0
        while limit is None or seen < limit:
            size = self._sweep_batch if limit is None else min(self._sweep_batch, limit - seen)
            async with self._sessionmaker() as session:
                rows = (
                    await session.execute(
                        select(c.id, c.family_name, c.given_name, c.title, c.language)
                        .where(c.greeting.is_(None), c.id > last_id)
                        .order_by(c.id)
                        .limit(size)
                    )
                ).all()
            if not rows:
                break
            last_id, seen = rows[-1].id, seen + len(rows)
            updates = []
            for row in rows:
                if self._tasks and self._queue.qsize():
                    await self._queue.join()  # requests (calls, edits) go first
                g = self.greeting_for(row.id, row.family_name, row.given_name, row.title, row.language)
                if g.text is not None:
                    try:
                        await self.store.publish(g.name, g.text, g.voice)
                    except SynthesisError as exc:
                        failures += 1
                        log.warning("greeting_synthesis_failed", customer_id=row.id, error=str(exc))
                        if failures >= MAX_SWEEP_FAILURES:
                            log.error("greeting_sweep_aborted", failures=failures)
                            return recorded
                        continue
                else:
                    await asyncio.sleep(0)
                updates.append(
                    {"b_id": row.id, "b_family": row.family_name, "b_given": row.given_name,
                     "b_title": row.title, "b_lang": row.language, "b_sound": g.name}
                )
            if updates:
                recorded += await self._record_many(updates)
        if recorded:
            log.info("greeting_sweep_done", recorded=recorded, examined=seen)
        return recorded

    async def _record_many(self, updates: list[dict[str, Any]]) -> int:
        c = customers.c
        stmt = (
            update(customers)
            .where(
                and_(
                    c.id == bindparam("b_id"),
                    c.family_name == bindparam("b_family"),
                    c.given_name == bindparam("b_given"),
                    c.title == bindparam("b_title"),
                    c.language == bindparam("b_lang"),
                    c.greeting.is_(None),
                )
            )
            .values(greeting=bindparam("b_sound"))
            .execution_options(synchronize_session=False)
        )
        async def write() -> Any:
            async with self._sessionmaker.begin() as session:
                conn = await session.connection()
                return await conn.execute(stmt, updates)

        result = await unbroken(write())
        # some drivers report no per-statement count for executemany (-1): count what was attempted
        return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(updates)

    async def prune_stale(self) -> int:
        """Delete customer greeting files that no longer match the customer (renamed, deleted); returns the count.

        A file is kept when it is what the customer's current name produces, so a greeting that is
        synthesized but not yet recorded is never removed. Cached syntheses are kept.
        """
        c = customers.c
        removed = 0
        batch: dict[int, list[str]] = {}

        async def flush() -> int:
            async with self._sessionmaker() as session:
                rows = (
                    await session.execute(
                        select(c.id, c.family_name, c.given_name, c.title, c.language).where(c.id.in_(list(batch)))
                    )
                ).all()
            wanted = {r.id: self.greeting_for(r.id, r.family_name, r.given_name, r.title, r.language).name for r in rows}
            count = 0
            for cid, names in batch.items():
                for name in names:
                    if wanted.get(cid) != name:
                        self.store.path(name).unlink(missing_ok=True)
                        count += 1
            batch.clear()
            return count

        if not self.store.dir.is_dir():
            return 0
        with os.scandir(self.store.dir) as entries:
            for entry in entries:
                m = _CUSTOMER_FILE.fullmatch(entry.name)
                if m is None:
                    continue
                batch.setdefault(int(m.group(1)), []).append(entry.name[: -len(".wav")])
                if len(batch) >= self._sweep_batch:
                    removed += await flush()
        if batch:
            removed += await flush()
        log.info("greeting_prune_done", removed=removed)
        return removed

    async def _sweep_loop(self) -> None:
        while True:
            # Clear before sweeping, not after: a request made while this sweep runs (its rows may
            # have been committed after the sweep's query) must start another sweep, not be lost.
            self._sweep_now.clear()
            try:
                await self.sweep_backlog()
            except SynthesisError as exc:
                log.error("greeting_sweep_failed", error=str(exc))
            except Exception:
                log.exception("greeting_sweep_failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._sweep_interval):
                    await self._sweep_now.wait()
