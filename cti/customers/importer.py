"""Bulk customer import from CSV: upsert by phone, all-or-nothing, every bad row reported.

Columns (header row required, UTF-8, a BOM is fine):

``phones``       one or more numbers, separated by ``;`` (any spelling: +86, 0086, 0..., mobile, landline)
``family_name``  ``given_name``  at least one of them
``title``        先生 / 女士 / Mr / Ms / Dr ... (optional)
``language``     ``zh`` (default) or ``en``
``vip``          yes/no, 1/0, true/false (default no)
``dealer``  ``email``  optional
``products``     ``line:model[:YYYY-MM-DD[:serial]]`` entries separated by ``;``; line is
                 appliances, mobile or office. When given, they replace the customer's products.

A row whose phone already belongs to a customer updates that customer (new numbers are added);
otherwise a new customer is created. The whole import runs in one transaction: if any row is
bad (unless ``skip_bad``) or anything fails, the database is left exactly as it was.
Validation (phonenumbers is the slow part) runs in worker processes beside the writer.
"""

from __future__ import annotations

import codecs
import csv
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from multiprocessing import get_context
from pathlib import Path
from operator import itemgetter
from typing import Any, Callable, Iterator

import asyncio
import structlog
from sqlalchemy import bindparam, case, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cti.customers import facts
from cti.customers.csvencoding import detect_encoding, how_to_fix, undecodable_line
from cti.customers.records import CustomerInput, InvalidRecord, customer_from_fields
from cti.db.tables import customer_phones, customers, products

log = structlog.get_logger(__name__)

COLUMNS = ("phones", "family_name", "given_name", "title", "language", "vip", "dealer", "email", "products")
CHUNK = 5000
#: Below this many rows validation runs in-process (worker start-up would cost more).
POOL_THRESHOLD = 20000
_IN_LIMIT = 500


class ImportFailed(Exception):
    """The import was refused or rolled back; ``report`` says why."""

    def __init__(self, message: str, report: "ImportReport") -> None:
        super().__init__(message)
        self.report = report


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    committed: bool = False
    encoding: str = "utf-8-sig"

    @property
    def imported(self) -> int:
        """Rows really written (a skipped bad row is not)."""
        return self.rows - len({line for line, _ in self.errors})


Row = tuple[int, list[str]]


#: A validated record as worker processes send it to the writer: plain tuples, which pickle
#: several times faster than the dataclasses (a million of them cross the process boundary).
#: (phones ((e164, kind, raw), ...), family_name, given_name, title, language, vip, dealer, email,
#:  products ((product_line, model, purchased_on, serial), ...))
WireRecord = tuple[Any, ...]


def wire_record(rec: CustomerInput) -> WireRecord:
    """The plain-tuple form of ``rec`` (see :data:`WireRecord`)."""
    return (tuple((p.e164, p.kind, p.raw) for p in rec.phones), rec.family_name, rec.given_name, rec.title,
            rec.language, rec.vip, rec.dealer, rec.email,
            tuple((p.product_line, p.model, p.purchased_on, p.serial) for p in rec.products))


def validate_chunk(rows: list[Row], header: list[str], region: str) -> tuple[list[tuple[int, WireRecord]], list[tuple[int, str]]]:
    """Validate raw CSV rows (runs in a worker process): (line, record) list and (line, reason) list."""
    good: list[tuple[int, WireRecord]] = []
    bad: list[tuple[int, str]] = []
    width = len(header)
    for line, values in rows:
        if len(values) != width:
            bad.append((line, f"expected {width} fields, found {len(values)}"))
            continue
        try:
            good.append((line, wire_record(customer_from_fields(dict(zip(header, values)), region))))
        except InvalidRecord as exc:
            bad.append((line, str(exc)))
    return good, bad


def _read_rows(path: Path, encoding: str) -> tuple[list[str], Iterator[list[Row]]]:
    fh = path.open("r", encoding=encoding, newline="", errors="strict")
    reader = csv.reader(fh)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        fh.close()
        raise InvalidRecord("the file is empty (a header row is required)") from None
    unknown = [h for h in header if h not in COLUMNS]
    if unknown or "phones" not in header:
        fh.close()
        raise InvalidRecord(
            f"header: unknown column(s) {unknown}" if unknown else "header: the 'phones' column is required"
        )

    def chunks() -> Iterator[list[Row]]:
        try:
            batch: list[Row] = []
            for values in reader:
                if not any(v.strip() for v in values):
                    continue
                batch.append((reader.line_num, values))
                if len(batch) >= CHUNK:
                    yield batch
                    batch = []
            if batch:
                yield batch
        finally:
            fh.close()

    return header, chunks()


def count_rows(path: Path) -> int:
    with path.open("rb") as fh:
        return max(sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b"")) - 1, 0)


class _Writer:
    """Writes validated chunks inside one open transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"
        self.now = datetime.now(timezone.utc)
        #: ids of the customers written (their caller_facts are recomputed at the end)
        self.created_ids: list[int] = []
        self.updated_ids: list[int] = []
        #: caller_facts triggers paused (before the first write)
        self.paused = False
        self._update = (
            update(customers)
            .where(customers.c.id == bindparam("b_id"))
            .values(
                greeting=case(
                    (
                        (customers.c.family_name == bindparam("family_name"))
                        & (customers.c.given_name == bindparam("given_name"))
                        & (customers.c.title == bindparam("title"))
                        & (customers.c.language == bindparam("language")),
                        customers.c.greeting,
                    ),
                    else_=None,
                ),
                family_name=bindparam("family_name"),
                given_name=bindparam("given_name"),
                title=bindparam("title"),
                language=bindparam("language"),
                vip=bindparam("vip"),
                dealer=bindparam("dealer"),
                email=bindparam("email"),
                updated_at=bindparam("updated_at"),
            )
        )

    @property
    def created(self) -> int:
        return len(self.created_ids)

    @property
    def updated(self) -> int:
        return len(self.updated_ids)

    async def _bulk_insert(self, table: str, rows: list[dict]) -> None:
        """Driver-level executemany of plain tuples (SQLAlchemy's per-row processing is the
        bottleneck of a million-row import); values are converted here as the dialect expects,
        column by column and only where SQLite needs it (times, dates, booleans)."""
        columns = list(rows[0])
        marks = ", ".join("?" if not self.pg else f"${i + 1}" for i in range(len(columns)))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        pick = itemgetter(*columns)
        values = [pick(r) for r in rows]
        if not self.pg:
            samples = [next((r[c] for r in rows if r[c] is not None), None) for c in columns]
            convert = [(i, self._sqlite_converter(sample)) for i, sample in enumerate(samples)]
            convert = [(i, f) for i, f in convert if f is not None]
            if convert:
                out = []
                for v in values:
                    v = list(v)
                    for i, f in convert:
                        if v[i] is not None:
                            v[i] = f(v[i])
                    out.append(tuple(v))
                values = out
        await self.conn.exec_driver_sql(sql, values)

    def _sqlite_converter(self, sample: object) -> Callable[[Any], Any] | None:
        """How SQLAlchemy stores this kind of value on SQLite (UTC text times, ISO dates, 0/1)."""
        if isinstance(sample, datetime):
            now, now_text = self.now, self.now.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
            return lambda v: now_text if v is now else v.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(sample, date):
            return date.isoformat
        if isinstance(sample, bool):
            return int
        return None

    async def _owners(self, numbers: list[str]) -> dict[str, int]:
        owners: dict[str, int] = {}
        for i in range(0, len(numbers), _IN_LIMIT):
            part = numbers[i : i + _IN_LIMIT]
            result = await self.conn.execute(
                select(customer_phones.c.e164, customer_phones.c.customer_id).where(customer_phones.c.e164.in_(part))
            )
            owners.update({e: int(c) for e, c in result.all()})
        return owners

    async def _new_ids(self, n: int) -> list[int]:
        if n == 0:
            return []
        if self.pg:
            result = await self.conn.execute(
                text("SELECT nextval(pg_get_serial_sequence('customers', 'id')) FROM generate_series(1, :n)"),
                {"n": n},
            )
            return [int(r[0]) for r in result.all()]
        start = int((await self.conn.execute(select(func.coalesce(func.max(customers.c.id), 0)))).scalar_one()) + 1
        return list(range(start, start + n))

    async def write(self, records: list[tuple[int, WireRecord]], errors: list[tuple[int, str]]) -> None:
        owners = await self._owners(sorted({p[0] for _, r in records for p in r[0] if p[0]}))
        plan: list[tuple[int | None, WireRecord]] = []
        pending: dict[str, int] = {}  # e164 -> index in plan, for new customers repeated in this chunk
        for line, rec in records:
            phones = rec[0]
            found = {owners[p[0]] for p in phones if p[0] in owners}
            dup = {pending[p[0]] for p in phones if p[0] in pending}
            if len(found) + len(dup) > 1:
                errors.append((line, "phones: the numbers belong to different customers"))
                continue
            if found:
                plan.append((found.pop(), rec))
            elif dup:
                plan[dup.pop()] = (None, rec)  # a later row for the same new customer wins
            else:
                for p in phones:
                    pending[p[0]] = len(plan)
                plan.append((None, rec))
        ids = iter(await self._new_ids(sum(1 for cid, _ in plan if cid is None)))
        inserts, updates, phone_rows, product_rows, replace = [], [], [], [], []
        for cid, rec in plan:
            phones, family_name, given_name, title, language, vip, dealer, email, products_ = rec
            values = {
                "family_name": family_name,
                "given_name": given_name,
                "title": title,
                "language": language,
                "vip": vip,
                "dealer": dealer,
                "email": email,
                "updated_at": self.now,
            }
            if cid is None:
                cid = next(ids)
                inserts.append({"id": cid, "created_at": self.now, **values})
            else:
                updates.append({"b_id": cid, **values})
                if products_:
                    replace.append(cid)
            for e164, kind, raw in phones:
                if e164 not in owners:
                    owners[e164] = cid
                    phone_rows.append({"customer_id": cid, "e164": e164, "kind": kind, "raw": raw})
            product_rows.extend(
                {"customer_id": cid, "product_line": line, "model": model, "purchased_on": bought, "serial": serial}
                for line, model, bought, serial in products_
            )
        conn = self.conn
        if inserts:
            await self._bulk_insert("customers", inserts)
            self.created_ids.extend(row["id"] for row in inserts)
        self.updated_ids.extend(row["b_id"] for row in updates)
        if updates:
            await conn.execute(self._update, updates)
        for i in range(0, len(replace), _IN_LIMIT):
            await conn.execute(delete(products).where(products.c.customer_id.in_(replace[i : i + _IN_LIMIT])))
        if phone_rows:
            await self._bulk_insert("customer_phones", phone_rows)
        if product_rows:
            await self._bulk_insert("products", product_rows)


async def import_customers(
    engine: AsyncEngine,
    path: str | os.PathLike[str],
    region: str = "CN",
    *,
    skip_bad: bool = False,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    encoding: str | None = None,
) -> ImportReport:
    """Import a CSV file in one transaction. Raises ImportFailed (nothing written) on bad rows or errors.

    ``encoding`` None: UTF-8, or GB18030 (GBK) when the file's start is not UTF-8 but is that."""
    path = Path(path)
    report = ImportReport()
    try:
        encoding = encoding or detect_encoding(path)
        codecs.lookup(encoding)
    except LookupError:
        raise ImportFailed(f"{path}: unknown encoding {encoding!r} (try utf-8 or gb18030)", report) from None
    except OSError as exc:
        raise ImportFailed(f"{path}: {exc.strerror or exc}", report) from None
    report.encoding = encoding
    try:
        header, chunks = _read_rows(path, encoding)
    except UnicodeDecodeError:
        line = undecodable_line(path, encoding) or 1
        report.errors.append((line, f"not {encoding} text"))
        raise ImportFailed(f"{path}: line {line} is not {encoding} text: {how_to_fix(encoding)}", report) from None
    except (InvalidRecord, csv.Error) as exc:
        report.errors.append((1, str(exc)))
        raise ImportFailed(f"{path}: {exc}", report) from None
    except OSError as exc:
        raise ImportFailed(f"{path}: {exc.strerror or exc}", report) from None

    loop = asyncio.get_running_loop()
    pool: ProcessPoolExecutor | None = None
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if path.stat().st_size > POOL_THRESHOLD * 60 else 0
    if workers > 0:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
    try:
        async with engine.begin() as conn:
            writer = _Writer(conn)
            in_flight: list[asyncio.Future] = []
            chunk_iter = iter(chunks)

            def submit() -> bool:
                try:
                    batch = next(chunk_iter)
                except StopIteration:
                    return False
                except UnicodeDecodeError:
                    line = undecodable_line(path, encoding) or report.rows + 2
                    raise InvalidRecord(f"line {line} is not {encoding} text: {how_to_fix(encoding)}") from None
                except csv.Error as exc:
                    raise InvalidRecord(f"unreadable file near line {report.rows + 2}: {exc}") from None
                report.rows += len(batch)
                if pool is None:
                    fut = loop.create_future()
                    fut.set_result(validate_chunk(batch, header, region))
                else:
                    fut = loop.run_in_executor(pool, validate_chunk, batch, header, region)
                in_flight.append(fut)
                return True

            for _ in range(max(workers, 1) + 1):
                if not submit():
                    break
            while in_flight:
                good, bad = await in_flight.pop(0)
                submit()
                report.errors.extend(bad)
                if report.errors and not skip_bad:
                    continue  # keep validating to report every bad row; nothing more is written
                if not writer.paused:
                    # Row triggers would recompute caller_facts once per phone and product
                    # written; they rest for this transaction instead, and the customers
                    # written are recomputed in bulk before it commits (cti/customers/facts.py).
                    await facts.pause(conn)
                    writer.paused = True
                await writer.write(good, report.errors)
                if progress:
                    progress(len(good) + len(bad))
            report.errors.sort()
            if report.errors and not skip_bad:
                raise ImportFailed(f"{len(report.errors)} bad row(s); nothing was imported", report)
            if writer.paused:
                await facts.refresh_after_bulk(conn, writer.created_ids, writer.updated_ids)
                await facts.resume(conn)
            if writer.pg and writer.created:
                await conn.execute(
                    text(
                        "SELECT setval(pg_get_serial_sequence('customers', 'id'), "
                        "(SELECT COALESCE(MAX(id), 1) FROM customers))"
                    )
                )
            report.created, report.updated = writer.created, writer.updated
    except InvalidRecord as exc:
        report.errors.append((report.rows + 1, str(exc)))
        raise ImportFailed(str(exc), report) from None
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    report.committed = True
    log.info("customers_imported", rows=report.rows, created=report.created, updated=report.updated, bad=len(report.errors))
    return report
