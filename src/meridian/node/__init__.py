"""Region nodes: one process per data-centre region, a relay and a key server (docs/data-plane.md).

Importing this package starts nothing: :func:`create_node_app` builds a node from its
:class:`NodeConfig` when called.
"""

from __future__ import annotations

from .app import NodeConfig, create_node_app
from .counters import MeetingCounters, MeetingStats, NodeCollector, NodeCounters
from .relay import Relay, close_code

__all__ = [
    "MeetingCounters",
    "MeetingStats",
    "NodeCollector",
    "NodeConfig",
    "NodeCounters",
    "Relay",
    "close_code",
    "create_node_app",
]
