"""What the agent's screen shows: pure builders of the screen-pop and its follow-ups.

Every message is a JSON-able dict with a ``type``:

``screen_pop``  {status: ringing|connected, call: {...}, customer: {...}|null, unknown_caller,
                new_customer: {phones, language}|null, last_calls: [...], open_complaints: [...],
                suggestion: {id, zh, en}|null}
``call_update`` {uniqueid, server, status: connected|ended|transferred|missed|answered_elsewhere|caller_left,
                reason, at}
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Iterable, Mapping

from cti.customers.records import display_name
from cti.web.crosssell import Rule, quiet_for_complaint, suggest


def _iso(v: Any) -> Any:
    if isinstance(v, datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=timezone.utc)
        return v.astimezone(timezone.utc).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return v


def name_with_title(family: str, given: str, title: str, language: str) -> str:
    """``王伟先生`` for zh, ``Mr John Smith`` for en (title first, Western order)."""
    name = display_name(family or "", given or "", language)
    if not title:
        return name
    return f"{name}{title}" if language == "zh" else f"{title} {name}"


def customer_view(c: Mapping[str, Any]) -> dict[str, Any]:
    """The customer card of a pop (from ``get_customer``), JSON-able."""
    return {
        "id": c["id"],
        "name": name_with_title(c["family_name"], c["given_name"], c["title"], c["language"]),
        "family_name": c["family_name"],
        "given_name": c["given_name"],
        "title": c["title"],
        "language": c["language"],
        "vip": bool(c["vip"]),
        "dealer": c.get("dealer"),
        "email": c.get("email"),
        "phones": [p["e164"] for p in c.get("phones", [])],
        "products": [{"product_line": p["product_line"], "model": p["model"], "serial": p.get("serial"),
                      "purchased_on": _iso(p.get("purchased_on"))} for p in c.get("products", [])],
    }


def complaints_view(tickets: Iterable[Mapping[str, Any]], now: float) -> list[dict[str, Any]]:
    out = []
    for t in tickets:
        deadline = t.get("sla_deadline")
        out.append({"id": t["id"], "category": t.get("category"), "description": t.get("description") or "",
                    "status": t.get("status"), "sla_deadline": _iso(deadline),
                    "overdue": bool(deadline is not None and deadline.timestamp() < now)})
    return out


def calls_view(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A customer's last calls: when, queue, outcome, who took it (name, else phone), wrap-up."""
    return [{"started_at": _iso(r.get("started_at")), "queue": r.get("queue"), "outcome": r.get("outcome"),
             "agent": r.get("agent_name") or r.get("agent_interface"),
             "disposition": r.get("disposition"), "notes": r.get("notes")} for r in rows]


def call_view(ringing: Mapping[str, Any], live: Mapping[str, Any] | None, now: float) -> dict[str, Any]:
    """The call part: the ringing event's fields, completed from the live call when cti tracks it."""
    live = live or {}
    queued_at = live.get("queued_at", ringing.get("queued_at"))
    return {
        "server": ringing.get("server"),
        "uniqueid": ringing["uniqueid"],
        "linkedid": ringing.get("linkedid"),
        "caller_number": ringing.get("caller_number") or "",
        "caller_name": ringing.get("caller_name") or "",
        "caller_e164": ringing.get("caller_e164"),
        "dialed": ringing.get("dialed") or live.get("dialed"),
        "queue": ringing.get("queue"),
        "priority": ringing.get("priority") if ringing.get("priority") is not None else live.get("priority"),
        "route": ringing.get("route") or live.get("route"),
        "lang": ringing.get("lang") or live.get("lang"),
        "ivr_choice": live.get("ivr_choice", ringing.get("ivr_choice")),
        "queued_at": queued_at,
        "wait_s": round(max(0.0, now - queued_at), 1) if queued_at else None,
        "ringing_at": ringing.get("at"),
        "interface": ringing.get("interface"),
    }


def build_pop(ringing: Mapping[str, Any], live: Mapping[str, Any] | None, customer: Mapping[str, Any] | None,
              rules: Iterable[Rule], now: float, today: date, status: str = "ringing",
              quiet_complaints: bool = True) -> dict[str, Any]:
    call = call_view(ringing, live, now)
    if customer is None:
        number = call["caller_e164"] or call["caller_number"]
        return {"type": "screen_pop", "status": status, "call": call, "customer": None, "unknown_caller": True,
                "new_customer": {"phones": number, "language": call["lang"] or "zh"},
                "last_calls": [], "open_complaints": [], "suggestion": None}
    return {
        "type": "screen_pop", "status": status, "call": call, "customer": customer_view(customer),
        "unknown_caller": False, "new_customer": None,
        "last_calls": calls_view(customer.get("last_calls", [])),
        "open_complaints": complaints_view(customer.get("open_tickets", []), now),
        "suggestion": None if quiet_for_complaint(call["queue"], customer.get("open_tickets", []), quiet_complaints)
        else suggest(customer.get("products", []), rules, today),
    }


#: bus topic -> (status on the pop, whether the pop stops being "current")
FOLLOW_UPS = {
    "call.answered": "connected",
    "call.completed": "ended",
    "call.transferred": "transferred",
    "call.ended": "ended",
}


def call_update(payload: Mapping[str, Any], status: str) -> dict[str, Any]:
    return {"type": "call_update", "server": payload.get("server"), "uniqueid": payload.get("uniqueid"),
            "status": status, "reason": payload.get("reason") or payload.get("kind"), "at": payload.get("at")}
