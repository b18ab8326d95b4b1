"""Persistence: the tables, connections and transactions, and the schema's migrations."""

from .database import Database, StorageBusy
from .migrate import migrate

__all__ = ["Database", "StorageBusy", "migrate"]
