"""Replicas of the control plane on one database: their leases and the one leader among them.

Every ``meridian serve`` process (and every worker of ``serve --workers N``) is a replica: it
holds a lease row in the database (:mod:`.replicas`), renewed by a heartbeat, and the others
treat it as gone once the lease has run out. Jobs that must run once for the whole service
(checkpoints, renewals, notices, the meeting timer, node health) run on the leader only
(:mod:`.leader`), elected by a PostgreSQL advisory lock. On SQLite there is one process, which
is the one replica and the leader.
"""

from .leader import Leadership, every_as_leader
from .replicas import (
    Replica,
    ReplicaState,
    alive_replica_ids,
    database_now,
    expired_replica_ids,
    lease_expired,
    replica_states,
)

__all__ = [
    "Leadership",
    "Replica",
    "ReplicaState",
    "alive_replica_ids",
    "database_now",
    "every_as_leader",
    "expired_replica_ids",
    "lease_expired",
    "replica_states",
]
