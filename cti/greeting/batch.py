"""Greetings built from the command line (after ``cti customers import``/``add``/``update``): no daemon needed."""

from __future__ import annotations

from typing import Iterable

import structlog
from sqlalchemy import select

from cti.config import Settings
from cti.db.engine import create_engine, sessionmaker
from cti.db.tables import customers
from cti.greeting.bulk import BulkReport, Progress, build_all
from cti.greeting.service import GreetingService
from cti.greeting.synth import SynthesisError

log = structlog.get_logger(__name__)

#: Customers fetched per query in :func:`synthesize_customers`.
_CHUNK = 500


async def synthesize_customers(settings: Settings, customer_ids: Iterable[int]) -> int:
    """Build and record the greetings of these customers now; returns how many were recorded.

    A missing or failing text-to-speech tool is logged, not raised: the customer keeps the generic
    greeting and the daemon's backlog sweeper retries later.
    """
    ids = sorted({int(i) for i in customer_ids})
    engine = create_engine(settings.database.url)
    service = GreetingService(settings.greeting, sessionmaker(engine), sweep_interval=None)
    recorded = 0
    c = customers.c
    try:
        await service.ensure_generic()
        for start in range(0, len(ids), _CHUNK):
            async with engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(c.id, c.family_name, c.given_name, c.title, c.language).where(
                            c.id.in_(ids[start : start + _CHUNK])
                        )
                    )
                ).all()
            for row in rows:
                recorded += await service.build(row.id, row.family_name, row.given_name, row.title, row.language)
    except SynthesisError as exc:
        log.error("greeting_synthesis_failed", error=str(exc))
    finally:
        await engine.dispose()
    return recorded


async def build_backlog(settings: Settings, limit: int | None = None, *, progress: Progress | None = None) -> BulkReport:
    """Build the fixed sounds and every missing customer greeting (``greeting IS NULL``) in bulk.

    A missing or failing text-to-speech tool is logged and reported, not raised.
    """
    engine = create_engine(settings.database.url)
    service = GreetingService(settings.greeting, sessionmaker(engine), sweep_interval=None)
    try:
        await service.ensure_generic()
        return await build_all(service, engine, limit=limit, progress=progress)
    except SynthesisError as exc:
        log.error("greeting_synthesis_failed", error=str(exc))
        return BulkReport(aborted=True, errors=[str(exc)])
    finally:
        await engine.dispose()


async def synthesize_backlog(settings: Settings, limit: int | None = None, *, progress: Progress | None = None) -> int:
    """Build the fixed sounds and every missing customer greeting (``greeting IS NULL``); returns the count."""
    return (await build_backlog(settings, limit, progress=progress)).recorded
