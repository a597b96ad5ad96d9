"""``GET /ws``: the agent's event stream. Authenticated by cookie/bearer header or the first message.

Handshake: the ``Origin`` is checked before the upgrade (403). Without a token on the upgrade
request, the first message must be ``{"type": "auth", "token": "..."}`` within
:data:`AUTH_TIMEOUT_S`, else the socket is closed with code 4401. Then the server sends
``hello`` (and, for agents, their state and current pop; for supervisors, ``agents``).
Client messages after that: ``{"type": "ping"}`` -> ``{"type": "pong"}``; anything else is ignored.
A client that sends more than its budget (:mod:`cti.web.wsguard`) is closed with 1008.
"""

from __future__ import annotations

import asyncio
import json

import structlog
from aiohttp import WSMsgType, web

from cti.web.auth import Gate
from cti.web.clients import Client
from cti.web.hub import PopHub
from cti.web.wsguard import CLOSE_POLICY

log = structlog.get_logger(__name__)

AUTH_TIMEOUT_S = 5.0
HEARTBEAT_S = 30.0
MAX_CLIENT_MESSAGE = 8192


class WebsocketEndpoint:
    def __init__(self, gate: Gate, hub: PopHub) -> None:
        self.gate = gate
        self.hub = hub

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self.gate.origin_allowed(request):
            log.warning("ws.origin_refused", origin=request.headers.get("Origin", "")[:100])
            raise web.HTTPForbidden(text="origin not allowed")
        token = self.gate.token_of(request)
        agent = None
        if token is not None:  # a bad token on the upgrade is refused before upgrading
            agent, _ = await self.gate.agent_for_token(token)
        guard = self.gate.ws_guard
        if agent is None and not guard.enter_pending():
            log.warning("ws.pending_refused", pending=guard.pending)
            raise web.HTTPServiceUnavailable(text="too many unauthenticated websockets", headers={"Retry-After": "5"})
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, compress=False, max_msg_size=MAX_CLIENT_MESSAGE,
                                   autoping=True)
        if agent is None:
            try:
                await ws.prepare(request)
                agent = await self._first_message_auth(ws)
            finally:
                guard.leave_pending()
            if agent is None:
                return ws
        else:
            await ws.prepare(request)
        client = Client(ws, request, agent, self.hub.max_queue)
        await self.hub.register(client)
        log.info("ws.connected", agent=agent.username, role=agent.role)
        budget = guard.budget()
        try:
            async for msg in ws:
                if not budget.spend():
                    log.warning("ws.message_budget_exceeded", agent=agent.username, rate=guard.rate)
                    await ws.close(code=CLOSE_POLICY, message=b"too many messages")
                    break
                if msg.type == WSMsgType.TEXT:
                    if msg.data[:40].replace(" ", "").startswith('{"type":"ping"'):
                        client.offer('{"type":"pong"}')
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.hub.unregister(client)
            log.info("ws.disconnected", agent=agent.username, reason=client.close_reason)
        return ws

    async def _first_message_auth(self, ws: web.WebSocketResponse):  # type: ignore[no-untyped-def]
        try:
            msg = await ws.receive(timeout=AUTH_TIMEOUT_S)
            data = json.loads(msg.data) if msg.type == WSMsgType.TEXT else None
            if not isinstance(data, dict) or data.get("type") != "auth":
                raise ValueError("first message is not auth")
            agent, _ = await self.gate.agent_for_token(str(data.get("token") or ""))
            return agent
        except (asyncio.TimeoutError, ValueError, TypeError, web.HTTPException) as exc:
            log.info("ws.auth_failed", reason=type(exc).__name__)
            await ws.close(code=4401, message=b"authentication required")
            return None
