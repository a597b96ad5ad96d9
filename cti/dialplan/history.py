"""Every deploy and rollback, recorded in ``dialplan_deploys`` (who, when, files + hashes, result)."""

from __future__ import annotations

import json
import socket
from typing import Any

from sqlalchemy import insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cti.db.tables import dialplan_deploys
from cti.dialplan.deploy import Outcome


async def ensure_table(engine: AsyncEngine) -> None:
    """Create ``dialplan_deploys`` in a database made before the table existed (schema.sql has it)."""
    async with engine.begin() as conn:
        names = await conn.run_sync(lambda c: inspect(c).get_table_names())
        if "dialplan_deploys" not in names:
            await conn.run_sync(lambda c: dialplan_deploys.create(c, checkfirst=True))


async def record(engine: AsyncEngine, outcome: Outcome, host: str | None = None) -> int:
    """Insert one row for ``outcome``; returns its id."""
    row = {
        "version": outcome.version,
        "action": outcome.action,
        "result": outcome.result,
        "deployed_by": outcome.by,
        "host": host if host is not None else socket.gethostname(),
        "started_at": outcome.started_at,
        "finished_at": outcome.finished_at,
        "files": json.dumps(outcome.files, sort_keys=True),
        "reloads": json.dumps(outcome.reloads),
        "message": outcome.message,
    }
    async with engine.begin() as conn:
        result = await conn.execute(insert(dialplan_deploys).values(**row).returning(dialplan_deploys.c.id))
        return int(result.scalar_one())


async def recent(engine: AsyncEngine, limit: int = 20) -> list[dict[str, Any]]:
    """The newest rows first, ``files``/``reloads`` decoded."""
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(dialplan_deploys).order_by(dialplan_deploys.c.started_at.desc(), dialplan_deploys.c.id.desc())
            .limit(limit))).mappings().all()
    out = []
    for r in rows:
        d = dict(r)
        d["files"] = json.loads(d["files"])
        d["reloads"] = json.loads(d["reloads"])
        out.append(d)
    return out
