"""Address lists of the settings (``agi.allowed_peers``, ``http.trusted_proxies``): parse once, test fast."""

from __future__ import annotations

import ipaddress
from typing import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "192.0.2.7", "::1"]`` -> networks; ValueError naming the bad entry."""
    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(str(v).strip(), strict=False))
        except ValueError:
            raise ValueError(f"{v!r} is not an IP address or network") from None
    return tuple(out)


def _address(host: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not host:
        return None
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def address_in(host: str | None, networks: Iterable[Network]) -> bool:
    """True when ``host`` (an IP address as text) is inside one of ``networks``."""
    addr = _address(host)
    return addr is not None and any(addr.version == n.version and addr in n for n in networks)


def is_loopback(host: str | None) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost``: reachable only from this machine."""
    if host is not None and host.lower() in LOOPBACK_NAMES:
        return True
    addr = _address(host)
    return addr is not None and addr.is_loopback
