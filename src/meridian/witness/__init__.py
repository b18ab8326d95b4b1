"""``meridian witness serve``: a C2SP tlog-witness over HTTP, for any log (docs/audit.md)."""

from .app import create_witness_app

__all__ = ["create_witness_app"]
