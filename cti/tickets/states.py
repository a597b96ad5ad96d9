"""The ticket state machine. Pure.

::

    open ──answer──► answered ──resolve──► resolved ──close──► closed
      │  ▲              │  ▲                  │                  │
      │  └──reopen──────┘  └──────reopen──────┴──────reopen──────┘
      └──resolve──► resolved            (reopened behaves like open)

The SLA clock runs while a ticket waits for an answer (``open``, ``reopened``): only those
escalate. ``answer`` stops it; ``reopen`` (an unsatisfied customer) starts a fresh SLA period.
"""

from __future__ import annotations

from cti.db.tables import OPEN_TICKET_STATES, TICKET_STATES

#: States whose SLA clock runs (the escalation scheduler's scope).
AWAITING_ANSWER = ("open", "reopened")
#: Routing meaning (FastAGI): a complaint in these states is an open complaint.
OPEN_STATES = OPEN_TICKET_STATES
STATES = TICKET_STATES

#: action -> (states it may start from, resulting state)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "answer": (("open", "reopened"), "answered"),
    "resolve": (("open", "answered", "reopened"), "resolved"),
    "close": (("answered", "resolved"), "closed"),
    "reopen": (("answered", "resolved", "closed"), "reopened"),
}


class IllegalTransition(ValueError):
    """An action that the ticket's current state does not allow; the message says which."""

    def __init__(self, action: str, status: str) -> None:
        allowed = TRANSITIONS.get(action, ((), ""))[0]
        if action not in TRANSITIONS:
            msg = f"unknown action {action!r} (expected {', '.join(TRANSITIONS)})"
        else:
            msg = (f"cannot {action} a ticket that is {status} "
                   f"(only from {', '.join(allowed)})")
        super().__init__(msg)
        self.action = action
        self.status = status


def next_status(status: str, action: str) -> str:
    """The state after ``action``; :class:`IllegalTransition` if ``status`` does not allow it."""
    if action not in TRANSITIONS:
        raise IllegalTransition(action, status)
    sources, target = TRANSITIONS[action]
    if status not in sources:
        raise IllegalTransition(action, status)
    return target


def allowed_actions(status: str) -> list[str]:
    """Actions the console may offer for a ticket in ``status``."""
    return [a for a, (sources, _) in TRANSITIONS.items() if status in sources]
