"""The ``meridian`` command line: a thin door onto the same functions the API uses."""

from .app import app, main

__all__ = ["app", "main"]
