"""What every HTTP door shares: callers and their tokens, client addresses behind trusted
proxies, the error envelope, request and response schemas, rate and body limits, idempotency,
the page sessions and the advisory-decision journal.

The API (:mod:`meridian.api`), the pages (:mod:`meridian.web`) and the region node
(:mod:`meridian.node`) build on this package; it imports none of them.
"""

__all__: list[str] = []
