"""The org chart: people (agents accounts), their managers, departments and product lines.

The escalation path of a ticket is its owner's chain of managers. The chart is small (people,
not tickets): it is loaded whole, once per scheduler pass, into an immutable :class:`OrgChart`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cti.db.tables import agents, org_people


class OrgError(ValueError):
    """An org chart change that cannot be made; the message says why."""


@dataclass(frozen=True)
class Person:
    agent_id: int
    username: str
    display_name: str
    role: str
    active: bool
    manager_id: int | None
    department: str
    product_line: str | None
    engineer: bool
    email: str | None
    webhook_url: str | None

    def directory(self) -> dict[str, Any]:
        """What every account may see of a colleague: who they are and their role (owner choices, names)."""
        return {"agent_id": self.agent_id, "username": self.username, "display_name": self.display_name or self.username,
                "role": self.role, "active": self.active, "engineer": self.engineer}

    def managed(self) -> dict[str, Any]:
        """What supervisors and admins see: the chart's place and contact, never the webhook URL (it
        carries the receiver's access token; write-only): only whether one is set."""
        out = self.public()
        del out["webhook_url"]
        out["webhook_set"] = self.webhook_url is not None
        return out

    def public(self) -> dict[str, Any]:
        """Everything, secrets included: for the CLI on the server only."""
        return {"agent_id": self.agent_id, "username": self.username, "display_name": self.display_name or self.username,
                "role": self.role, "active": self.active, "manager_id": self.manager_id, "department": self.department,
                "product_line": self.product_line, "engineer": self.engineer, "email": self.email,
                "webhook_url": self.webhook_url}


@dataclass(frozen=True)
class OrgChart:
    people: Mapping[int, Person]

    def get(self, agent_id: int | None) -> Person | None:
        return self.people.get(agent_id) if agent_id is not None else None

    def chain(self, agent_id: int) -> list[int]:
        """The managers above ``agent_id``, nearest first (cycle-safe)."""
        out: list[int] = []
        seen = {agent_id}
        current = self.people.get(agent_id)
        while current is not None and current.manager_id is not None and current.manager_id not in seen:
            out.append(current.manager_id)
            seen.add(current.manager_id)
            current = self.people.get(current.manager_id)
        return out

    def escalation_target(self, owner_id: int | None, product_line: str | None = None) -> int | None:
        """Who takes over when ``owner_id`` misses a deadline: the nearest active manager; None at the top.

        An owner outside the chart (or no owner) goes to the top person of the product line.
        """
        if owner_id is None or owner_id not in self.people:
            top = self.top_for(product_line)
            return top if top is not None and top != owner_id else None
        for manager in self.chain(owner_id):
            p = self.people.get(manager)
            if p is None or p.active:
                return manager
        return None

    def top_for(self, product_line: str | None) -> int | None:
        """The active person without a manager who covers ``product_line`` (lowest id), if any."""
        tops = sorted(p.agent_id for p in self.people.values()
                      if p.manager_id is None and p.active and p.product_line in (None, product_line))
        return tops[0] if tops else None

    def manages(self, manager_id: int, agent_id: int) -> bool:
        return manager_id in self.chain(agent_id)

    def team_of(self, manager_id: int) -> set[int]:
        """Everyone below ``manager_id``, at any depth."""
        return {a for a in self.people if a != manager_id and self.manages(manager_id, a)}

    def engineers_for(self, product_line: str | None) -> list[Person]:
        """Active back-office engineers for ``product_line`` (specialists first, then generalists)."""
        eng = [p for p in self.people.values() if p.engineer and p.active]
        exact = sorted((p for p in eng if product_line is not None and p.product_line == product_line),
                       key=lambda p: p.agent_id)
        general = sorted((p for p in eng if p.product_line is None), key=lambda p: p.agent_id)
        return exact + general

    def responsible_for(self, product_line: str | None) -> list[Person]:
        """Active non-engineer people who handle complaints of ``product_line``, front line first."""
        staff = [p for p in self.people.values() if not p.engineer and p.active
                 and (p.product_line is None or p.product_line == product_line)]
        return sorted(staff, key=lambda p: (-len(self.chain(p.agent_id)), p.product_line is None, p.agent_id))


async def load_chart(conn: AsyncConnection) -> OrgChart:
    rows = await conn.execute(
        select(org_people, agents.c.username, agents.c.display_name, agents.c.role, agents.c.active)
        .join(agents, agents.c.id == org_people.c.agent_id)
    )
    people = {
        r.agent_id: Person(r.agent_id, r.username, r.display_name, r.role, bool(r.active), r.manager_id, r.department,
                           r.product_line, bool(r.engineer), r.email, r.webhook_url)
        for r in rows
    }
    return OrgChart(people)


async def agent_id_by_username(conn: AsyncConnection, username: str) -> int:
    found = (await conn.execute(select(agents.c.id).where(agents.c.username == username))).scalar()
    if found is None:
        raise OrgError(f"no agent account {username!r} (create it with `cti agents add`)")
    return int(found)


def _check_url(url: str | None) -> None:
    if url and not (url.startswith("http://") or url.startswith("https://")):
        raise OrgError(f"webhook_url: expected http:// or https://, got {url[:80]!r}")


def _check_email(email: str | None) -> None:
    if email and ("@" not in email or any(c.isspace() or c in "<>,;" for c in email) or len(email) > 254):
        raise OrgError(f"email: not an address: {email[:80]!r}")


async def set_person(conn: AsyncConnection, agent_id: int, *, now: datetime, manager_id: int | None = None,
                     department: str = "", product_line: str | None = None, engineer: bool = False,
                     email: str | None = None, webhook_url: str | None = None) -> None:
    """Add ``agent_id`` to the chart or update its place; refuses a manager loop."""
    _check_url(webhook_url)
    _check_email(email)
    if manager_id == agent_id:
        raise OrgError("a person cannot be their own manager")
    chart = await load_chart(conn)
    known = {r for r in (await conn.execute(select(agents.c.id).where(agents.c.id.in_(
        [i for i in (agent_id, manager_id) if i is not None])))).scalars()}
    for i in (agent_id, manager_id):
        if i is not None and i not in known:
            raise OrgError(f"no agent account with id {i}")
    if manager_id is not None and agent_id in [manager_id, *chart.chain(manager_id)]:
        raise OrgError(f"manager loop: {manager_id} already reports to {agent_id}")
    values = dict(manager_id=manager_id, department=department.strip(), product_line=product_line or None,
                  engineer=engineer, email=email or None, webhook_url=webhook_url or None, updated_at=now)
    if agent_id in chart.people:
        await conn.execute(org_people.update().where(org_people.c.agent_id == agent_id).values(**values))
    else:
        await conn.execute(org_people.insert().values(agent_id=agent_id, created_at=now, **values))


def describe_tree(chart: OrgChart) -> Iterable[tuple[int, Person]]:
    """(depth, person) in tree order, roots first: for `cti org list`."""
    children: dict[int | None, list[Person]] = {}
    for p in chart.people.values():
        parent = p.manager_id if p.manager_id in chart.people else None
        children.setdefault(parent, []).append(p)
    seen: set[int] = set()

    def walk(parent: int | None, depth: int) -> Iterable[tuple[int, Person]]:
        for p in sorted(children.get(parent, []), key=lambda p: p.agent_id):
            if p.agent_id in seen:
                continue
            seen.add(p.agent_id)
            yield depth, p
            yield from walk(p.agent_id, depth + 1)

    yield from walk(None, 0)
