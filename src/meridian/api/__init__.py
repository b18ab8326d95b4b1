"""The HTTP door: a FastAPI app over the same service functions the CLI uses."""

from .app import create_app

__all__ = ["create_app"]
