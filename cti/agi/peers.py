"""Who may open a FastAGI session: ``agi.allowed_peers``, by default loopback and the AMI endpoints' hosts.

FastAGI has no authentication: whoever connects can hand cti a uniqueid and a caller number and
get a decision published for them. :class:`PeerFilter` refuses any other peer at connect, with
one log line per refused address (a scanner must not flood the log).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Iterable

import structlog

from cti.netaddr import Network, address_in, parse_networks

log = structlog.get_logger(__name__)

LOOPBACK = parse_networks(["127.0.0.0/8", "::1/128"])
#: refused addresses remembered (for one log line each); past it the set starts again
MAX_REMEMBERED = 10_000


class PeerFilter:
    """``allows(address)``: is this FastAGI peer one of ours? (pure once built)"""

    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)
        self._refused: set[str] = set()
        self._cache: dict[str, bool] = {}

    def allows(self, address: str | None) -> bool:
        if address is None:  # a Unix socket: local by construction
            return True
        ok = self._cache.get(address)
        if ok is None:
            ok = address_in(address, self.networks)
            if len(self._cache) < MAX_REMEMBERED:
                self._cache[address] = ok
        if not ok:
            if address not in self._refused:
                if len(self._refused) >= MAX_REMEMBERED:
                    self._refused.clear()
                self._refused.add(address)
                log.warning("agi_peer_refused", peer=address, hint="add it to agi.allowed_peers if it is an Asterisk")
        return ok

    @classmethod
    async def build(cls, allowed: Iterable[str], ami_hosts: Iterable[str]) -> "PeerFilter":
        """``allowed`` if given, else loopback + the addresses the AMI hosts resolve to."""
        allowed = list(allowed)
        if allowed:
            return cls(parse_networks(allowed))
        nets: list[Network] = list(LOOPBACK)
        loop = asyncio.get_running_loop()
        for host in set(ami_hosts):
            try:
                infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            except OSError as exc:
                log.warning("agi_peer_unresolved", host=host, error=str(exc))
                continue
            for info in infos:
                nets.append(ipaddress.ip_network(str(info[4][0]).split("%", 1)[0]))
        return cls(nets)
