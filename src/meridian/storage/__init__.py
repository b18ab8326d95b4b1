"""Persistence: the tables, connections and transactions, and the schema's migrations."""

from .database import Database, StorageUnavailableError
from .migrate import migrate

__all__ = ["Database", "StorageUnavailableError", "migrate"]
