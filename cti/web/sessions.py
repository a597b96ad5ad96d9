"""Ending sessions: a logout (or a new password) revokes every token of the account, on every node.

Tokens carry the account's ``agents.token_version`` (:mod:`cti.web.tokens`); the gate refuses a
token whose version is not the account's current one. Its check costs nothing extra: the gate reads
the account row on every request anyway, and PostgreSQL is shared by every node, so a revocation
holds everywhere at once.

Open websockets were authenticated once, so they are ended here:

* at once on the node that revoked and on every other one, through the bus topic
  :data:`SESSIONS_ENDED` ``{agent_id, version}`` (the Redis stream in a cluster);
* within :attr:`SessionWatch.interval_s` for changes made outside the daemon (``cti agents passwd``,
  an account disabled or its role changed in the database): one query for all connected accounts.

A socket ended this way is closed with code 4401 ("session ended").
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Iterable

import structlog
from sqlalchemy.ext.asyncio import async_sessionmaker

from cti.agents.accounts import end_sessions, session_versions

log = structlog.get_logger(__name__)

#: bus topic: every session of ``agent_id`` older than ``version`` has ended
SESSIONS_ENDED = "account.sessions_ended"
CLOSE_CODE = 4401


class SessionWatch:
    """Revokes sessions (``await revoke(agent_id)``) and ends the websockets of revoked ones.

    ``clients()`` lists the open websocket clients (:class:`cti.web.clients.Client`: ``.agent``,
    ``await .close(code, message)``): the console's and the wallboard's.
    """

    def __init__(self, bus: Any, sessionmaker: async_sessionmaker, clients: Callable[[], Iterable[Any]], *,
                 interval_s: float = 10.0) -> None:
        self.bus = bus
        self.sessionmaker = sessionmaker
        self.clients = clients
        self.interval_s = interval_s
        self.ended = 0
        self._sub: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    async def revoke(self, agent_id: int) -> None:
        """End every session of the account, here and on the other nodes."""
        async with self.sessionmaker() as session, session.begin():
            version = await end_sessions(await session.connection(), agent_id)
        if version is None:
            return
        log.info("auth.sessions_ended", agent_id=agent_id, version=version)
        self.bus.publish(SESSIONS_ENDED, {"agent_id": agent_id, "version": version})

    async def _close(self, client: Any, why: str) -> None:
        """Close the socket (its handler then unregisters it)."""
        await client.close(CLOSE_CODE, "session ended")
        self.ended += 1
        log.info("ws.session_ended", agent=client.agent.username, why=why)

    async def _listen(self) -> None:
        async for msg in self._sub:
            agent_id, version = msg.payload.get("agent_id"), msg.payload.get("version")
            if not isinstance(version, int):
                continue
            for client in [c for c in self.clients()
                           if not c.closed and c.agent.id == agent_id and c.agent.token_version < version]:
                await self._close(client, "revoked")

    async def check(self) -> None:
        """Close the websockets whose account changed since they connected (version, active, role)."""
        clients = [c for c in self.clients() if not c.closed]
        if not clients:
            return
        async with self.sessionmaker() as session:
            current = await session_versions(await session.connection(), list({c.agent.id for c in clients}))
        for client in clients:
            a = client.agent
            if current.get(a.id) != (a.token_version, True, a.role):
                await self._close(client, "account changed")

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except Exception:  # the database is away: try again next time, the gate still refuses
                log.exception("ws.session_check_failed")

    async def start(self) -> None:
        self._sub = self.bus.subscribe(SESSIONS_ENDED, maxsize=10_000)
        self._tasks = [asyncio.create_task(self._listen(), name="sessions-listen"),
                       asyncio.create_task(self._sweep(), name="sessions-sweep")]

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
