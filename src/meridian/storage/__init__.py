"""Persistence: the tables, connections and transactions, and the schema's migrations."""

from .database import Database
from .migrate import migrate

__all__ = ["Database", "migrate"]
