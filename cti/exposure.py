"""What ``cti serve`` exposes: refuse a placeholder AMI secret off loopback, warn on plain listeners off loopback."""

from __future__ import annotations

import structlog

from cti.config import ConfigError, Settings, ami_endpoints
from cti.netaddr import is_loopback

log = structlog.get_logger(__name__)

#: Secrets that are examples, not secrets (README, manager.conf samples, habits).
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "change_me", "secret", "password", "cti", "admin",
                                 "asterisk", "manager", "amp111", "1234", "12345678", "...", "<secret>"})


def is_placeholder(secret: str) -> bool:
    return secret.strip().lower() in PLACEHOLDER_SECRETS or len(secret.strip()) < 8


def check_exposure(settings: Settings) -> list[str]:
    """ConfigError for a placeholder/empty AMI secret towards a non-loopback Asterisk; the warnings logged."""
    if settings.ami.enabled:
        for i, ep in enumerate(ami_endpoints(settings)):
            if not is_loopback(ep.host) and is_placeholder(ep.secret):
                key = f"ami.endpoints[{i}].secret" if settings.ami.endpoints else "ami.secret"
                raise ConfigError(
                    f"invalid value for {key}: an empty or placeholder secret for the AMI of {ep.host} "
                    f"(not loopback); set the long random secret of manager.conf")
    warnings = []
    h, a = settings.http, settings.agi
    if not is_loopback(h.host):
        warnings.append(f"http.host {h.host}: the console and its passwords and tokens travel in clear; "
                        "put a TLS reverse proxy in front (http.trusted_proxies) or bind 127.0.0.1")
    if not is_loopback(a.host) and not a.allowed_peers:
        warnings.append(f"agi.host {a.host}: FastAGI (plain TCP) accepts only loopback and the AMI hosts; "
                        "list the Asterisk servers in agi.allowed_peers if they differ")
    for w in warnings:
        log.warning("exposure", detail=w)
    return warnings
