"""Reports: the daily handover of a team, and the contact-frequency proof that the caps held.

A team is an org-chart department (``org_people.department``); days are local to ``zone``.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cti.db.tables import agents, handover_notes, org_people, outbound_attempts, outbound_followups, outbound_leads
from cti.outbound.policy import Cap


def max_in_window(times: Iterable[datetime], window: timedelta) -> int:
    """The largest number of ``times`` inside any half-open window of this length, (t - window, t]."""
    ts = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(ts):
        while ts[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def contact_frequency(conn: AsyncConnection, caps: Iterable[Cap], *, since: datetime | None = None,
                            until: datetime | None = None) -> dict[str, Any]:
    """For each cap: the most contacts any customer had in any window of its length (held: <= count)."""
    a = outbound_attempts
    q = select(a.c.customer_id, a.c.started_at).where(a.c.contact.is_(True))
    if since is not None:
        q = q.where(a.c.started_at >= since)
    if until is not None:
        q = q.where(a.c.started_at < until)
    per: dict[int, list[datetime]] = defaultdict(list)
    for cid, at in (await conn.execute(q)).all():
        per[cid].append(at)
    dials = Counter((await conn.execute(select(a.c.customer_id).where(a.c.status != "failed"))).scalars())
    out = []
    for cap in caps:
        seen = {cid: max_in_window(ts, timedelta(days=cap.days)) for cid, ts in per.items()}
        worst = max(seen.values(), default=0)
        out.append({"cap": str(cap), "count": cap.count, "days": cap.days, "max_contacts": worst,
                    "held": worst <= cap.count, "over": sorted(c for c, n in seen.items() if n > cap.count)})
    return {"customers": len(per), "contacts": sum(len(v) for v in per.values()),
            "max_dials_per_customer": max(dials.values(), default=0), "caps": out}


def day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    z = ZoneInfo(zone)
    start = datetime.combine(day, time(0), z)
    return start, start + timedelta(days=1)


async def handover(conn: AsyncConnection, team: str, day: date, *, zone: str = "Asia/Shanghai") -> dict[str, Any]:
    """The day of one team: calls made, reached, outcomes, open follow-ups, leads by dealer, notes."""
    start, end = day_bounds(day, zone)
    members = {r.id: r.username for r in (await conn.execute(
        select(agents.c.id, agents.c.username).join(org_people, org_people.c.agent_id == agents.c.id)
        .where(org_people.c.department == team))).all()}
    ids = list(members) or [-1]
    a = outbound_attempts
    attempts = (await conn.execute(select(a).where(a.c.agent_id.in_(ids), a.c.started_at >= start,
                                                   a.c.started_at < end).order_by(a.c.id))).all()
    per_agent: dict[str, Counter[str]] = defaultdict(Counter)
    for r in attempts:
        c = per_agent[members.get(r.agent_id, "?")]
        c["calls"] += 1
        c["reached"] += int(bool(r.contact))
        if r.outcome:
            c[r.outcome] += 1
        elif r.status == "failed":
            c["not_connected"] += 1
    f = outbound_followups
    open_rows = (await conn.execute(select(f.c.id, f.c.customer_id, f.c.owner_id, f.c.due_at, f.c.attempts)
                                    .where(f.c.status == "open", f.c.owner_id.in_(ids)).order_by(f.c.due_at))).all()
    leads = (await conn.execute(select(outbound_leads.c.dealer, outbound_leads.c.status).where(
        outbound_leads.c.found_by.in_(ids), outbound_leads.c.created_at >= start,
        outbound_leads.c.created_at < end))).all()
    by_dealer: dict[str, int] = Counter((d or "(no dealer)") for d, _ in leads)
    notes = (await conn.execute(select(handover_notes).where(
        handover_notes.c.team == team, handover_notes.c.created_at >= start, handover_notes.c.created_at < end)
        .order_by(handover_notes.c.id))).all()
    outcomes = Counter(r.outcome for r in attempts if r.outcome)
    return {"team": team, "day": day.isoformat(), "zone": zone, "members": sorted(members.values()),
            "calls": len(attempts), "reached": sum(1 for r in attempts if r.contact), "outcomes": dict(outcomes),
            "by_agent": {k: dict(v) for k, v in sorted(per_agent.items())},
            "open_followups": [{"id": r.id, "customer_id": r.customer_id, "owner": members.get(r.owner_id),
                                "due_at": r.due_at, "attempts": r.attempts} for r in open_rows],
            "leads_by_dealer": dict(sorted(by_dealer.items())),
            "notes": [{"author": members.get(n.author_id, str(n.author_id)), "customer_id": n.customer_id,
                       "followup_id": n.followup_id, "body": n.body, "at": n.created_at} for n in notes]}


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    s = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def handover_csv(report: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["section", "key", "value", "detail"])
    w.writerow(["summary", "team", _cell(report["team"]), report["day"]])
    w.writerow(["summary", "calls", report["calls"], ""])
    w.writerow(["summary", "reached", report["reached"], ""])
    for k, v in sorted(report["outcomes"].items()):
        w.writerow(["outcome", k, v, ""])
    for agent, counts in report["by_agent"].items():
        for k, v in sorted(counts.items()):
            w.writerow(["agent", _cell(agent), v, k])
    for f in report["open_followups"]:
        w.writerow(["open_followup", f["id"], f["customer_id"], f"owner={_cell(f['owner'])} due={f['due_at'].isoformat()}"])
    for dealer, n in report["leads_by_dealer"].items():
        w.writerow(["leads", _cell(dealer), n, ""])
    for n in report["notes"]:
        w.writerow(["note", _cell(n["author"]), _cell(n["body"]), n["at"].isoformat()])
    return buf.getvalue()


async def add_handover_note(conn: AsyncConnection, *, team: str, author_id: int | None, body: str, now: datetime,
                            followup_id: int | None = None, customer_id: int | None = None) -> int:
    if followup_id is not None and customer_id is None:
        customer_id = (await conn.execute(select(outbound_followups.c.customer_id)
                                          .where(outbound_followups.c.id == followup_id))).scalar_one_or_none()
    return (await conn.execute(handover_notes.insert().values(
        team=team, author_id=author_id, followup_id=followup_id, customer_id=customer_id, body=body[:4000],
        created_at=now).returning(handover_notes.c.id))).scalar_one()
