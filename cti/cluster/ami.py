"""AmiSupervisor: each Asterisk's AMI stream is consumed by exactly one node.

For every AMI endpoint (``cti.config.ami_endpoints``) the nodes compete for the lease
``ami:<server>``; the holder runs an :class:`~cti.ami.service.AmiService` for it. A new
holder starts the service from scratch: open calls come back from the ``calls`` table
(``CallRecorder.load_open``), the AMI resync reconciles them with what the PBX still has,
and call rows are upserted by (server, uniqueid), so a failover neither loses nor
duplicates a call. Without Redis (one node) every endpoint's service runs here.
"""

from __future__ import annotations

from typing import Any, Callable

import redis.asyncio as aioredis
import structlog

from cti.ami.service import AmiService
from cti.cluster.singleton import Singleton, run_singleton
from cti.config import AmiConfig

log = structlog.get_logger(__name__)


class AmiSupervisor:
    def __init__(self, endpoints: list[AmiConfig], make_service: Callable[[AmiConfig], AmiService], *,
                 redis: aioredis.Redis | None, node_id: str, ttl: float = 5.0,
                 lease_prefix: str = "cti:lease:") -> None:
        self.lease_prefix = lease_prefix
        names = [e.server for e in endpoints]
        if len(set(names)) != len(names):
            raise ValueError(f"AMI endpoints need distinct server names: {names}")
        self.endpoints = endpoints
        self.make_service = make_service
        self.redis = redis
        self.node_id = node_id
        self.ttl = ttl
        self._handles: dict[str, Singleton] = {}
        #: called with (state "started"|"stopped", service) when this node gains/loses a server
        self.on_change: Callable[[str, AmiService], None] | None = None

    @property
    def services(self) -> dict[str, AmiService]:
        """The AMI services running on this node, by server name."""
        return {name: h.instance for name, h in self._handles.items() if h.instance is not None}

    def service(self, server: str) -> AmiService | None:
        h = self._handles.get(server)
        return h.instance if h is not None else None

    def _changed(self, state: str, svc: Any) -> None:
        log.info("ami.consumer_" + state, server=svc.server, node_id=self.node_id)
        if self.on_change is not None:
            self.on_change(state, svc)

    async def start(self) -> None:
        """Compete for every endpoint (single node: start them all, failing loud on a bad login)."""
        try:
            for cfg in self.endpoints:
                self._handles[cfg.server] = await run_singleton(
                    f"ami:{cfg.server}", lambda cfg=cfg: self.make_service(cfg), redis=self.redis,
                    node_id=self.node_id, ttl=self.ttl, on_change=self._changed, prefix=self.lease_prefix)
        except BaseException:
            await self.stop()
            raise

    async def stop(self, *, release: bool = True) -> None:
        """Stop every service here; ``release=False`` leaves the leases to expire (a crash, for tests)."""
        for h in list(self._handles.values()):
            await h.stop(release=release)
        self._handles.clear()


__all__ = ["AmiSupervisor"]
