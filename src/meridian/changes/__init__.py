"""Changing the bundle in force: replay of the log under a proposal, and the two-person workflow."""

from .replay import Replay, replay_log
from .workflow import (
    Change,
    activate,
    activate_due,
    approve,
    get_change,
    list_changes,
    propose,
    refuse,
    replay_bundle,
    rollback,
)

__all__ = [
    "Change",
    "Replay",
    "activate",
    "activate_due",
    "approve",
    "get_change",
    "list_changes",
    "propose",
    "refuse",
    "replay_bundle",
    "replay_log",
    "rollback",
]
