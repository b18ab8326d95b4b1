"""What Meridian says on the wire, named once: WebSocket close codes and JSON error codes.

Every door and every client reads these from here, so a code is written in one place. Both are
``int``/``str`` enums: a member is its value, so sockets, JSON and the database see the same
numbers and strings as before.

:class:`Order` names what one control-plane replica tells the others over PostgreSQL
(:mod:`meridian.storage.orders`).

Close codes of the 44xx and 45xx range mirror an HTTP status (4400 is 400, 4451 is 451); the
others are the standard ones of RFC 6455.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum, unique

__all__ = ["Close", "ErrorCode", "Order"]


@unique
class Close(IntEnum):
    """The close code of a WebSocket, signalling or relay, and what it means."""

    #: the socket is done: a participant left, or a cascade link has no one left to carry
    NORMAL = 1000
    #: the control-plane replica is going away or restarting: join again (through another)
    RESTART = 1012
    #: no close frame arrived (a client's reading of a connection that just dropped)
    ABNORMAL = 1006
    #: "try again later": the receiver fell too far behind the meeting
    TOO_SLOW = 1013
    #: the first message or a later one is malformed
    MALFORMED = 4400
    #: no valid credential: a missing, forged or expired grant or token
    UNAUTHENTICATED = 4401
    #: refused: the caller may not, or a region node's fence keeps the meeting out
    FORBIDDEN = 4403
    #: the meeting (or what else was named) does not exist, or not for this caller
    NOT_FOUND = 4404
    #: the meeting was ended by the control plane (HTTP 410, gone)
    ENDED = 4410
    #: a message that parses but is not valid
    INVALID = 4422
    #: a join past its rate limit; the refusal says ``retry_after``
    RATE_LIMITED = 4429
    #: removed by the control plane (HTTP 451, unavailable for legal reasons)
    REMOVED = 4451
    #: the participant's region node is down: it may join again and be placed elsewhere
    REGION_DOWN = 4503


@unique
class ErrorCode(StrEnum):
    """The ``code`` of an error body, ``{"error": {"code": …, "message": …}}``, and of a refusal."""

    BAD_REQUEST = "bad_request"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    #: the bundle in force refused: the body carries the decision
    DENIED = "denied"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    INVALID = "invalid"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    #: the live log is not what it committed to: reads refused until it is restored
    LOG_INTEGRITY = "log_integrity"
    INTERNAL = "internal"
    #: any other status
    ERROR = "error"


@unique
class Order(StrEnum):
    """What one control-plane replica committed and every other must act on at once."""

    #: a token was revoked: forget every remembered caller
    REVOKE = "revoke"
    #: an account was suspended: forget every remembered caller
    SUSPEND = "suspend"
    #: participants were removed from a live meeting (``meeting``, ``participants``, ``reason``)
    REMOVE = "remove"
    #: a meeting ended (``meeting``, ``reason``)
    END = "end"
    #: a meeting's key moved to a new epoch (``meeting``, ``epoch``): hand out its keys
    ROTATE = "rotate"
    #: a meeting's roster changed (``meeting``): hand out the signed roster again
    ROSTER = "roster"
    #: another bundle was put in force: load it now rather than at the next poll
    BUNDLE = "bundle"
