"""Meridian: may this person do this, here, now — and why?

The in-process API::

    >>> import meridian
    >>> d = meridian.decide({"action": "join", "at": "2020-08-23T09:00:00+08:00",
    ...                      "subject": {"type": "individual", "ip": "114.114.114.114"}})
    >>> d.decision, d.location.country
    ('allow', 'CN')
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from .errors import (
    BundleError,
    ConfigurationError,
    InputError,
    MeridianError,
    NotFoundError,
    RequestError,
)
from .policy import (
    Decision,
    Engine,
    Reason,
    Request,
    load_bundle,
    parse_request,
)

__all__ = [
    "BundleError",
    "ConfigurationError",
    "Decision",
    "Engine",
    "InputError",
    "MeridianError",
    "NotFoundError",
    "Reason",
    "Request",
    "RequestError",
    "decide",
    "default_engine",
    "load_bundle",
    "parse_request",
]

__version__ = "0.1.0"  # the one version: pyproject.toml reads it ([tool.hatch.version])


@cache
def default_engine() -> Engine:
    """The engine for the built-in bundle and the embedded IP table, built on first use."""
    return Engine()


def decide(request: Request | Mapping[str, Any]) -> Decision:
    """Decide one request with the built-in bundle; see :class:`Engine` for anything else."""
    return default_engine().decide(request)
