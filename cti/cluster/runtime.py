"""The cluster side of the daemon, built by the composition root when cti runs as several nodes
(``bus.url = redis://…``) or against several Asterisk servers (``ami.endpoints``).

* one AMI consumer per Asterisk across the nodes (:class:`~cti.cluster.ami.AmiSupervisor`,
  leases ``ami:<server>``);
* the ticket escalation scheduler once across the nodes (lease ``tickets-escalation``);
* agent actions from any node: :meth:`ClusterRuntime.remote_ami` sends them over the bus to the
  node that consumes the agent's Asterisk (:mod:`cti.cluster.ami_relay`).

Leases live in the bus's Redis; with ``bus.url = memory://`` (one node, several Asterisks)
everything simply runs here.
"""

from __future__ import annotations

from typing import Any, Callable

import structlog

from cti.ami.service import AmiService
from cti.cluster.ami import AmiSupervisor
from cti.cluster.ami_relay import AmiActionRelay, RemoteAmi
from cti.cluster.singleton import Singleton, run_singleton
from cti.config import Settings, ami_endpoints

log = structlog.get_logger(__name__)


class ClusterRuntime:
    def __init__(self, settings: Settings, node_id: str, make_ami: Callable[[Any], AmiService],
                 make_tickets: Callable[[], Any], bus: Any = None) -> None:
        self.settings = settings
        self.bus = bus
        self.relay: AmiActionRelay | None = None
        self.node_id = node_id
        self.make_ami = make_ami
        self.make_tickets = make_tickets
        self.redis: Any = None
        self.ami: AmiSupervisor | None = None
        self.tickets: Singleton | None = None

    async def start(self, on_ami_change: Callable[[str, AmiService], None] | None = None) -> None:
        s = self.settings
        if s.bus.url != "memory://":
            from cti.bus.redis import redis_client

            self.redis = redis_client(s.bus.url, name=f"cti-lease:{self.node_id}",
                                      socket_timeout=max(0.2, s.cluster.lease_ttl / 3))
        prefix = f"{s.bus.stream}:lease:"  # leases belong to the cluster (its stream), not to the Redis
        self.ami = AmiSupervisor(ami_endpoints(s), self.make_ami, redis=self.redis, node_id=self.node_id,
                                 ttl=s.cluster.lease_ttl, lease_prefix=prefix)
        self.ami.on_change = on_ami_change
        await self.ami.start()
        if self.bus is not None:
            self.relay = AmiActionRelay(self.bus, self.ami.service)
            await self.relay.start()
        self.tickets = await run_singleton("tickets-escalation", self.make_tickets, redis=self.redis,
                                           node_id=self.node_id, ttl=s.cluster.lease_ttl, prefix=prefix)
        log.info("cluster.started", node_id=self.node_id, servers=[e.server for e in self.ami.endpoints],
                 leases="redis" if self.redis is not None else "local")

    def remote_ami(self, server: str, timeout: float = 5.0) -> RemoteAmi:
        """Agent actions (queue_add/remove/pause) on ``server``, executed by whichever node consumes it."""
        return RemoteAmi(self.bus, server, timeout=timeout)

    async def stop(self) -> None:
        if self.relay is not None:
            await self.relay.stop()
        if self.tickets is not None:
            await self.tickets.stop()
        if self.ami is not None:
            await self.ami.stop()
        if self.redis is not None:
            await self.redis.aclose()
