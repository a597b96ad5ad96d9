"""Agent accounts in the ``agents``/``agent_skills`` tables (SQLAlchemy Core)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, false, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cti.db.tables import agent_skills, agents

ROLES = ("agent", "supervisor", "admin")


class AccountError(ValueError):
    """An account operation that cannot be done; the message says why."""


@dataclass(frozen=True)
class Agent:
    id: int
    username: str
    display_name: str
    role: str
    interface: str | None
    language: str
    experienced: bool
    active: bool
    skills: dict[str, int] = field(default_factory=dict)
    #: the session version: tokens carrying another one are refused (:func:`end_sessions`)
    token_version: int = 0

    def public(self) -> dict[str, Any]:
        """What the console may see about this account (never the hash)."""
        return {"id": self.id, "username": self.username, "display_name": self.display_name or self.username,
                "role": self.role, "interface": self.interface, "language": self.language,
                "skills": dict(self.skills)}


def _agent(row: Any, skills: dict[str, int]) -> Agent:
    return Agent(row.id, row.username, row.display_name, row.role, row.interface, row.language,
                 bool(row.experienced), bool(row.active), skills, int(row.token_version or 0))


async def _skills(conn: AsyncConnection, agent_id: int) -> dict[str, int]:
    rows = await conn.execute(select(agent_skills.c.queue, agent_skills.c.penalty)
                              .where(agent_skills.c.agent_id == agent_id).order_by(agent_skills.c.queue))
    return {q: int(p) for q, p in rows.all()}


async def add_agent(conn: AsyncConnection, username: str, password_hash: str, *, display_name: str = "",
                    role: str = "agent", interface: str | None = None, language: str = "zh",
                    experienced: bool = False, skills: dict[str, int] | None = None) -> int:
    """Insert an account; AccountError when the username or interface is taken or a value is invalid."""
    username = username.strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise AccountError("username: 1-64 characters, no spaces")
    if role not in ROLES:
        raise AccountError(f"role: {role!r} (expected {', '.join(ROLES)})")
    if language not in ("zh", "en"):
        raise AccountError(f"language: {language!r} (expected zh or en)")
    clash = or_(agents.c.username == username, (agents.c.interface == interface) if interface else false())
    taken = (await conn.execute(select(agents.c.username, agents.c.interface).where(clash))).first()
    if taken is not None:
        what = "username" if taken.username == username else "interface"
        raise AccountError(f"{what}: already used by account {taken.username!r}")
    res = await conn.execute(insert(agents).values(
        username=username, display_name=display_name, role=role, interface=interface or None,
        password_hash=password_hash, experienced=experienced, language=language, active=True,
        created_at=datetime.now(timezone.utc)))
    agent_id = int(res.inserted_primary_key[0])
    if skills:
        await conn.execute(insert(agent_skills), [{"agent_id": agent_id, "queue": q, "penalty": int(p)}
                                                  for q, p in skills.items()])
    return agent_id


async def set_password(conn: AsyncConnection, username: str, password_hash: str) -> None:
    """New password; every session of the account ends (its token version moves on)."""
    res = await conn.execute(update(agents).where(agents.c.username == username).values(
        password_hash=password_hash, token_version=agents.c.token_version + 1))
    if res.rowcount == 0:
        raise AccountError(f"no account {username!r}")


async def end_sessions(conn: AsyncConnection, agent_id: int) -> int | None:
    """Revoke every token of the account (logout): its token version moves on. The new version, or
    None when there is no such account."""
    await conn.execute(update(agents).where(agents.c.id == agent_id).values(token_version=agents.c.token_version + 1))
    return (await conn.execute(select(agents.c.token_version).where(agents.c.id == agent_id))).scalar()


async def session_versions(conn: AsyncConnection, agent_ids: list[int]) -> dict[int, tuple[int, bool, str]]:
    """(token version, active, role) of each account, for the websockets' periodic check."""
    if not agent_ids:
        return {}
    rows = await conn.execute(select(agents.c.id, agents.c.token_version, agents.c.active, agents.c.role)
                              .where(agents.c.id.in_(agent_ids)))
    return {r.id: (int(r.token_version or 0), bool(r.active), r.role) for r in rows}


async def set_skills(conn: AsyncConnection, agent_id: int, skills: dict[str, int]) -> None:
    await conn.execute(delete(agent_skills).where(agent_skills.c.agent_id == agent_id))
    if skills:
        await conn.execute(insert(agent_skills), [{"agent_id": agent_id, "queue": q, "penalty": int(p)}
                                                  for q, p in skills.items()])


async def credentials(conn: AsyncConnection, username: str) -> tuple[Agent, str | None] | None:
    """The account and its password hash, for login; None when unknown."""
    row = (await conn.execute(select(agents).where(agents.c.username == username))).first()
    if row is None:
        return None
    return _agent(row, await _skills(conn, row.id)), row.password_hash


async def get_agent(conn: AsyncConnection, agent_id: int) -> Agent | None:
    row = (await conn.execute(select(agents).where(agents.c.id == agent_id))).first()
    return None if row is None else _agent(row, await _skills(conn, row.id))


async def list_agents(conn: AsyncConnection) -> list[Agent]:
    rows = (await conn.execute(select(agents).order_by(agents.c.username))).all()
    skills: dict[int, dict[str, int]] = {}
    for aid, q, p in (await conn.execute(select(agent_skills.c.agent_id, agent_skills.c.queue,
                                                agent_skills.c.penalty))).all():
        skills.setdefault(aid, {})[q] = int(p)
    return [_agent(r, skills.get(r.id, {})) for r in rows]
