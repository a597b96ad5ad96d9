"""Several cti nodes on one Redis: node identity, leases and leader election, one AMI consumer
per Asterisk (:class:`AmiSupervisor`), cluster-wide singletons (:func:`run_singleton`)."""

from cti.cluster.identity import make_node_id
from cti.cluster.lease import LeaderElector, Lease
from cti.cluster.singleton import Singleton, run_singleton

__all__ = ["LeaderElector", "Lease", "Singleton", "make_node_id", "run_singleton"]
