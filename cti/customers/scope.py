"""Which customers an account may see and change: the one scoping rule of customer data.

Head-office staff (agents, supervisors, admins) see every customer. An account listed in
``dealer_contacts`` is a dealer's contact: it sees and changes only the customers whose
``customers.dealer`` is its dealer, and so only their tickets, calls, follow-ups and leads; it
can never move a customer to another dealer (or to none).

Every read and write of those resources goes through :func:`scope_of` and the :class:`Scope` it
returns: ``scope.where(column)`` narrows a query (``column`` is a customer id column of any
table), ``await scope.check(conn, customer_id)`` guards one customer, ``scope.check_dealer``
guards a change of ``customers.dealer``. A refusal is :class:`OutOfScope`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import ColumnElement, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from cti.db.tables import customers, dealer_contacts

log = structlog.get_logger(__name__)


class OutOfScope(PermissionError):
    """The account may not see or change this customer (or its tickets, calls, follow-ups, leads)."""


@dataclass(frozen=True)
class Scope:
    """The customers one account may reach: all of them (``dealer`` None) or one dealer's."""

    account_id: int | None
    dealer: str | None = None

    @property
    def is_dealer(self) -> bool:
        return self.dealer is not None

    def where(self, customer_id: Any) -> ColumnElement[bool]:
        """A condition on ``customer_id`` (a column holding a customer id): true for staff,
        "that customer is this dealer's" for a dealer contact."""
        if self.dealer is None:
            return true()
        return customer_id.in_(select(customers.c.id).where(customers.c.dealer == self.dealer))

    def allows_dealer(self, customer_dealer: str | None) -> bool:
        """May this account reach a customer whose ``customers.dealer`` is ``customer_dealer``?"""
        return self.dealer is None or customer_dealer == self.dealer

    async def check(self, conn: AsyncConnection, customer_id: int | None) -> None:
        """OutOfScope unless the account may reach ``customer_id`` (a dealer contact: an existing
        customer of its dealer; staff: anything, existence is the caller's business)."""
        if self.dealer is None:
            return
        found = None
        if customer_id is not None:
            found = (await conn.execute(select(customers.c.dealer).where(customers.c.id == customer_id))).first()
        if found is None or found.dealer != self.dealer:
            log.warning("scope.refused", account_id=self.account_id, dealer=self.dealer, customer_id=customer_id)
            raise OutOfScope("this customer belongs to another dealer")

    def check_dealer(self, current: str | None, requested: str | None) -> str | None:
        """The ``customers.dealer`` to write when this account asks for ``requested`` (``current``:
        the stored value, None for a new customer). A dealer contact keeps its own dealer."""
        if self.dealer is None:
            return requested
        if requested not in (None, self.dealer) or (current is not None and current != self.dealer):
            log.warning("scope.dealer_change_refused", account_id=self.account_id, dealer=self.dealer,
                        requested=requested)
            raise OutOfScope("a dealer contact cannot change a customer's dealer")
        return self.dealer


STAFF = Scope(None)  #: the system and the CLI: every customer


async def scope_of(conn: AsyncConnection, account: Any) -> Scope:
    """The scope of ``account`` (anything with ``id``; None or an id of None: the system)."""
    account_id = getattr(account, "id", None)
    if account_id is None:
        return STAFF
    dealer = (await conn.execute(select(dealer_contacts.c.dealer)
                                 .where(dealer_contacts.c.agent_id == account_id))).scalar_one_or_none()
    return Scope(int(account_id), dealer)
