"""The API door: JSON over HTTP, over the same domain services the CLI and the pages use.

``install_api`` adds its routes to the app :func:`meridian.server.create_app` builds.
"""

from .app import API_DESCRIPTION, install_api

__all__ = ["API_DESCRIPTION", "install_api"]
