"""The client's address: the peer, or the ``X-Forwarded-For`` entry a trusted reverse proxy added."""

from __future__ import annotations

from typing import Sequence

from aiohttp import web

from cti.netaddr import Network, address_in


def client_address(request: web.Request, trusted: Sequence[Network]) -> str:
    """``request.remote``; when it is a trusted proxy, the right-most ``X-Forwarded-For`` hop that is not
    one (entries left of it could be written by the client itself)."""
    peer = request.remote or "?"
    if not trusted or not address_in(peer, trusted):
        return peer
    hops = [h.strip() for v in request.headers.getall("X-Forwarded-For", ()) for h in v.split(",")]
    for hop in reversed(hops):
        if hop and not address_in(hop, trusted):
            return hop[:64]
    return peer
