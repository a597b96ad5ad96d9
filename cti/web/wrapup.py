"""Writing a call's wrap-up: who may, and every save kept (``call_wrapups``).

* An agent may write the wrap-up of a call it *answered*: the call row's agent (what the recorder
  wrote from ``AgentConnect``), or, before the recorder has written the row, the hub saw its phone
  answer (``call.answered``). Its phone ringing is not enough. Supervisors and admins may write any.
* Every save is a version in ``call_wrapups``; ``calls.disposition/notes`` hold the latest. A second
  save is an edit: it names the version it edits (``base_version``), and a save based on an older
  version than the latest is refused (409) instead of silently overwriting a colleague's edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, insert, select, update

from cti.agents.accounts import Agent
from cti.db.tables import call_wrapups, calls


class WrapupRefused(Exception):
    """``status`` is the HTTP status to answer with (403 not yours, 409 stale edit)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class WrapupSaved:
    call_id: int
    version: int

    @property
    def edited(self) -> bool:
        return self.version > 1


def answered_it(agent: Agent, row: Any, answered_live: bool) -> bool:
    """Whether ``agent`` answered the call of ``row`` (None: not recorded yet)."""
    if row is not None and (row.agent_id is not None or row.agent_interface):
        return row.agent_id == agent.id or bool(agent.interface and row.agent_interface == agent.interface)
    return answered_live


async def save_wrapup(conn: Any, agent: Agent, *, server: str, uniqueid: str, disposition: str, notes: str,
                      answered_live: bool, base_version: int | None = None,
                      now: datetime | None = None) -> WrapupSaved:
    """Write the wrap-up (in the caller's transaction); raises :class:`WrapupRefused`."""
    now = now or datetime.now(timezone.utc)
    row = (await conn.execute(select(calls.c.id, calls.c.agent_id, calls.c.agent_interface).where(
        calls.c.server == server, calls.c.uniqueid == uniqueid))).first()
    if agent.role == "agent" and not answered_it(agent, row, answered_live):
        raise WrapupRefused(403, "not your call: only the agent who answered it (or a supervisor) writes its wrap-up")
    if row is None:  # answered, not recorded yet: the recorder fills the rest of the row
        call_id = (await conn.execute(insert(calls).values(
            server=server, uniqueid=uniqueid, started_at=now, agent_id=agent.id if agent.role == "agent" else None,
            agent_interface=agent.interface if agent.role == "agent" else None).returning(calls.c.id))).scalar_one()
    else:
        call_id = row.id
    latest = (await conn.execute(select(func.max(call_wrapups.c.version)).where(
        call_wrapups.c.call_id == call_id))).scalar() or 0
    if latest and base_version is not None and base_version != latest:
        raise WrapupRefused(409, f"the wrap-up was edited meanwhile (version {latest}): reload it before saving")
    version = latest + 1
    await conn.execute(insert(call_wrapups).values(call_id=call_id, version=version, agent_id=agent.id,
                                                   author=agent.username, disposition=disposition, notes=notes,
                                                   saved_at=now))
    await conn.execute(update(calls).where(calls.c.id == call_id).values(disposition=disposition, notes=notes))
    return WrapupSaved(call_id, version)


async def wrapup_history(conn: Any, call_id: int) -> list[dict[str, Any]]:
    """Every version of the call's wrap-up, oldest first."""
    rows = await conn.execute(select(call_wrapups.c.version, call_wrapups.c.author, call_wrapups.c.disposition,
                                     call_wrapups.c.notes, call_wrapups.c.saved_at)
                              .where(call_wrapups.c.call_id == call_id).order_by(call_wrapups.c.version))
    return [dict(r) for r in rows.mappings().all()]
