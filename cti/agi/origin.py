"""Which Asterisk sent a FastAGI call: the AMI endpoint whose host is the connection's peer.

With several Asterisk servers (``ami.endpoints``) a uniqueid is unique per server only, and the
routing decision must reach the AMI consumer of the server the call is on, or that call's record
lacks its customer, route and queue. The FastAGI environment does not name the server, but the
TCP peer does: :class:`AgiOrigins` resolves every endpoint's host once at start and maps a peer
address back to the endpoint's ``server`` name. A peer that matches no endpoint, or several
(two Asterisks on one host), gets the first endpoint's name, with one warning per address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from contextvars import ContextVar
from typing import Iterable

import structlog

log = structlog.get_logger(__name__)

#: The peer address of the FastAGI call being decided (set by AgiServer for its handler and callbacks).
AGI_PEER: ContextVar[str | None] = ContextVar("cti_agi_peer", default=None)


def _canonical(address: str) -> str:
    """``::ffff:10.0.0.5`` and ``10.0.0.5`` are one peer."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


class AgiOrigins:
    """Peer address -> AMI server name (pure once resolved; see :meth:`resolve`)."""

    def __init__(self, default: str, by_address: dict[str, set[str]] | None = None) -> None:
        self.default = default
        self._by_address = {_canonical(a): set(names) for a, names in (by_address or {}).items()}
        self._warned: set[str] = set()
        self._cache: dict[str | None, str] = {}

    @classmethod
    async def resolve(cls, endpoints: Iterable[tuple[str, str]]) -> "AgiOrigins":
        """From ``(server, host)`` pairs; a host that does not resolve is logged and left out."""
        pairs = list(endpoints)
        loop = asyncio.get_running_loop()
        by_address: dict[str, set[str]] = {}
        for server, host in pairs:
            try:
                infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            except OSError as exc:
                log.warning("agi.origin_unresolved", server=server, host=host, error=str(exc))
                continue
            for info in infos:
                by_address.setdefault(_canonical(str(info[4][0])), set()).add(server)
        return cls(pairs[0][0] if pairs else "default", by_address)

    def server_for(self, peer: str | None) -> str:
        """The server name of a call from ``peer`` (the default when unknown or ambiguous)."""
        name = self._cache.get(peer)
        if name is not None:
            return name
        names = self._by_address.get(_canonical(peer)) if peer else None
        if names is not None and len(names) == 1:
            name = next(iter(names))
        else:
            name = self.default
            key = peer or ""
            if len(self._by_address) > 1 and key not in self._warned:  # several Asterisks: say so once
                self._warned.add(key)
                log.warning("agi.origin_unknown" if not names else "agi.origin_ambiguous", peer=peer,
                            servers=sorted(names or ()), using=name)
        if len(self._cache) < 1024:
            self._cache[peer] = name
        return name
