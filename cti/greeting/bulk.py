"""Every missing customer greeting at once (after a big import): off the call path, built for a million rows.

Per distinct spoken text, the text's hash and its synthesis happen once (memoized); per customer only
a sound name is formatted. The hard links are made in bulk by a child process
(:class:`~cti.greeting.links.BulkLinker`) while this process reads the next rows and records the
previous ones with driver-level batch updates (:mod:`cti.greeting.bulkdb`). A customer's greeting is
recorded only after its file exists; a customer whose greeting cannot be synthesized or linked keeps
``greeting`` NULL (the generic greeting plays, the daemon's sweeper retries later).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Callable

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from cti.greeting.bulkdb import BacklogRow, Record, count_backlog, fetch_backlog, record_greetings
from cti.greeting.links import BulkLinker
from cti.greeting.naming import GENERIC_GREETING, content_key
from cti.greeting.service import MAX_SWEEP_FAILURES, GreetingService
from cti.greeting.synth import SynthesisError
from cti.greeting.text import greeting_text

log = structlog.get_logger(__name__)

#: Customers per read, link chunk and update transaction.
BATCH = 20_000
#: Batches in flight between reading and recording.
DEPTH = 2
#: Syntheses at once (the store runs at most its own ``max_processes`` of them).
SYNTHESES = 2
#: Distinct names remembered (a million customers have far fewer; bounds memory on odd data).
MEMO_LIMIT = 500_000

#: ``progress(customers examined so far, customers to examine)``; first called with 0.
Progress = Callable[[int, int], None]


@dataclass
class BulkReport:
    """What :func:`build_all` did."""

    examined: int = 0
    recorded: int = 0
    #: Customers left without a greeting because their sound could not be synthesized or linked.
    failed: int = 0
    syntheses: int = 0
    aborted: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Sound:
    """A name's greeting: the sound-name suffix and cache file, or the generic name (``source`` None)."""

    suffix: str
    source: str | None
    key: str


class _Greetings:
    """Greetings of names, memoized per name; hashed and synthesized once per distinct (text, voice)."""

    def __init__(self, service: GreetingService, report: BulkReport) -> None:
        self._service = service
        self._report = report
        self.by_name: dict[tuple[str, str, str, str], _Sound] = {}
        self._keys: dict[tuple[str, str], str] = {}  # (text, voice) → content key
        self._synthesized: dict[str, str | None] = {}  # content key → cache file (relative), None: failed
        self.failed_texts = 0
        self._slots = asyncio.Semaphore(SYNTHESES)

    async def learn(self, rows: list[BacklogRow]) -> None:
        """Make :attr:`by_name` hold every name of ``rows``, synthesizing new texts (concurrently, bounded by the store)."""
        if len(self.by_name) >= MEMO_LIMIT:
            self.by_name.clear()
        new: dict[tuple[str, str, str, str], tuple[str, str, str] | None] = {}
        for _cid, family, given, title, language in rows:
            name = (family, given, title, language)
            if name in self.by_name or name in new:
                continue
            text = greeting_text(family, given, title, language)
            if text is None:
                new[name] = None
                continue
            voice = self._service.voice(language)
            key = self._keys.get((text, voice))
            if key is None:
                key = self._keys[(text, voice)] = content_key(text, voice)
            new[name] = (text, voice, key)
        todo = {g[2]: g for g in new.values() if g is not None and g[2] not in self._synthesized}
        if todo:
            results = await asyncio.gather(*(self._synthesize(text, voice) for text, voice, _ in todo.values()))
            self._synthesized.update(zip(todo, results))
        for name, g in new.items():
            if g is None:
                self.by_name[name] = _Sound(GENERIC_GREETING["en" if name[3] == "en" else "zh"], None, "")
            else:
                self.by_name[name] = _Sound(g[2][:12], self._synthesized[g[2]], g[2])

    async def _synthesize(self, text: str, voice: str) -> str | None:
        store = self._service.store
        async with self._slots:
            if self.failed_texts >= MAX_SWEEP_FAILURES:
                return None  # the tool keeps failing: stop trying (the build is aborted)
            try:
                path = await store.cached(text, voice)
            except SynthesisError as exc:
                self.failed_texts += 1
                self._report.errors.append(f"cannot synthesize {text!r}: {exc}")
                log.warning("greeting_synthesis_failed", text=text, error=str(exc))
                return None
        return str(path.relative_to(store.dir))


async def build_all(
    service: GreetingService,
    engine: AsyncEngine,
    *,
    limit: int | None = None,
    progress: Progress | None = None,
    batch: int = BATCH,
    linker_python: str | None = None,
) -> BulkReport:
    """Give every customer without a greeting theirs (at most ``limit`` examined); the fixed sounds must exist."""
    report = BulkReport()
    total = await count_backlog(engine)
    total = total if limit is None else min(total, limit)
    if progress:
        progress(0, total)
    greetings = _Greetings(service, report)
    syntheses_before = service.store.syntheses
    queue: asyncio.Queue[tuple[asyncio.Future[dict[int, str]], list[Record], list[Record], int] | None] = asyncio.Queue(DEPTH)

    async def record() -> None:
        while (item := await queue.get()) is not None:
            linked, records, generic, examined = item
            failures = await linked
            if failures:
                report.failed += len(failures)
                sample = next(iter(failures.values()))
                report.errors.append(f"{len(failures)} greeting file(s) not linked, e.g.: {sample}")
                log.warning("greeting_link_failed", count=len(failures), example=sample)
                records = [r for i, r in enumerate(records) if i not in failures]
            report.recorded += await record_greetings(engine, records + generic)
            report.examined += examined
            if progress:
                progress(report.examined, total)

    async with BulkLinker(service.store.dir, python=linker_python) as linker:
        recorder = asyncio.create_task(record(), name="greeting-bulk-recorder")
        try:
            last_id, seen = -1, 0
            while limit is None or seen < limit:
                rows = await fetch_backlog(engine, last_id, batch if limit is None else min(batch, limit - seen))
                if not rows:
                    break
                last_id, seen = rows[-1][0], seen + len(rows)
                pairs, records, generic, unknown = _prepare(rows, greetings.by_name, report)
                if unknown:  # names not seen before: their texts are hashed (and synthesized) now
                    await greetings.learn(unknown)
                    more = _prepare(unknown, greetings.by_name, report)
                    pairs += more[0]
                    records += more[1]
                    generic += more[2]
                if greetings.failed_texts >= MAX_SWEEP_FAILURES:
                    report.aborted = True
                    log.error("greeting_sweep_aborted", failures=greetings.failed_texts)
                await linker.drain()
                await _put(queue, (linker.submit(pairs), records, generic, len(rows)), recorder)
                if report.aborted:
                    break
            await _put(queue, None, recorder)
            await recorder
        finally:
            if not recorder.done():
                recorder.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await recorder
    report.syntheses = service.store.syntheses - syntheses_before
    log.info(
        "greeting_bulk_done", examined=report.examined, recorded=report.recorded, failed=report.failed,
        syntheses=report.syntheses, linker="child" if linker.in_child else "thread",
    )
    return report


async def _put(queue: asyncio.Queue, item: object, recorder: asyncio.Task[None]) -> None:
    """Queue ``item`` for the recorder, or raise the recorder's error if it stopped."""
    put = asyncio.ensure_future(queue.put(item))
    await asyncio.wait([put, recorder], return_when=asyncio.FIRST_COMPLETED)
    if not put.done():
        put.cancel()
        recorder.result()  # raises its error
        raise RuntimeError("greeting recorder stopped early")


def _prepare(
    rows: list[BacklogRow], by_name: dict[tuple[str, str, str, str], _Sound], report: BulkReport
) -> tuple[list[tuple[str, str]], list[Record], list[Record], list[BacklogRow]]:
    """Link pairs and records (same order) of the personalized greetings, records of the generic ones,
    and the rows whose name is not in ``by_name`` yet."""
    pairs: list[tuple[str, str]] = []
    records: list[Record] = []
    generic: list[Record] = []
    unknown: list[BacklogRow] = []
    for row in rows:
        cid, family, given, title, language = row
        sound = by_name.get((family, given, title, language))
        if sound is None:
            unknown.append(row)
        elif sound.source is not None:
            name = f"greet-{cid}-{sound.suffix}"
            pairs.append((sound.source, f"{name}.wav"))
            records.append((name, cid, family, given, title, language))
        elif sound.key:
            report.failed += 1  # its synthesis failed: the generic greeting keeps playing
        else:
            generic.append((sound.suffix, cid, family, given, title, language))
    return pairs, records, generic, unknown
