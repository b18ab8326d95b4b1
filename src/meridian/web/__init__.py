"""The web: the operator console, the partner portal and the user pages, served by the API's app.

Pages are rendered on the server from Jinja2 templates; the little script they need (the
data-centre map, the meeting page's WebCrypto) is served from ``/static``, including the
front-end libraries ``make`` vendors from the npm registry. A page shows only what its viewer's
API token could read through the API: it calls the same service functions with the same caller.
"""

from __future__ import annotations

from .app import install_web, start_sessions

__all__ = ["install_web", "start_sessions"]
