"""Meridian's one error hierarchy.

Every error a user can cause is a :class:`MeridianError`. Each class carries the exit code the
CLI uses and the HTTP status the API uses, so each door has exactly one handler::

    MeridianError              anything Meridian refuses, with a one-line message (exit 1, 400)
    ├── InputError             a request or document a client sent is malformed (exit 2, 422)
    │   ├── RequestError       a decision request does not match the public contract
    │   └── BundleError        a policy bundle is invalid; carries file:line locations
    ├── NotFoundError          a named thing does not exist, or not for this caller (exit 1, 404)
    ├── AuthenticationError    no valid API token was given (exit 77, 401)
    │   └── GrantError         a signed grant (relay or key) is missing, forged or expired
    ├── SignInRequiredError    a page needs a signed-in viewer: the browser goes to ``/login`` (303)
    ├── ForbiddenError         the caller's role may not do this at all (exit 77, 403)
    │   ├── FenceError         a region node refuses a meeting its allowed set keeps out
    │   └── RemovedError       a relay was ordered to drop this participant
    ├── DeniedError            the bundle in force refused the action; carries the decision (exit 3, 403)
    ├── ConflictError          the action clashes with the current state (exit 1, 409)
    ├── EndedError             a relay was told the meeting has ended (exit 1, 410)
    ├── RateLimitedError       a caller passed a rate limit; carries ``retry_after`` (exit 75, 429)
    ├── UnwrapError            a wrapped key or sealed frame does not open (exit 1, 400)
    │   ├── RosterError        a roster is not signed by the control plane, or is malformed
    │   └── FrameDroppedError  a receiver drops a frame; carries the counter it goes to
    ├── ProofError             a Merkle proof, a checkpoint or its signature does not verify (exit 1, 400)
    ├── LogIntegrityError      a log is not what its signed checkpoints commit to (exit 1, 500)
    │   └── LogTamperedError   the live log's stored entries changed: reads refused (503)
    ├── LogFailedError         ``audit verify``: the log does not verify (exit 1)
    ├── ExportFailedError      ``report transparency --verify --log``: the export does not verify
    ├── KeyServerError         a meeting's key server cannot give a key: the join fails (exit 69, 503)
    └── ConfigurationError     the operator's configuration cannot be used (exit 78, 500)
        └── StorageUnavailableError  the database is locked or unreachable (exit 75, 503)

Messages follow one style: lowercase, no final period, the offending input in backticks, context
chained with colons (``unknown jurisdiction `XX`: expected an ISO 3166-1 alpha-2 code``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .text import INVISIBLE

if TYPE_CHECKING:
    from pydantic import ValidationError

    from .policy.decision import Decision

__all__ = [
    "AuthenticationError",
    "BundleError",
    "BundleProblem",
    "ConfigurationError",
    "ConflictError",
    "DeniedError",
    "EndedError",
    "ExportFailedError",
    "FenceError",
    "ForbiddenError",
    "FrameDroppedError",
    "GrantError",
    "InputError",
    "KeyServerError",
    "LogFailedError",
    "LogIntegrityError",
    "LogTamperedError",
    "MeridianError",
    "NotFoundError",
    "ProofError",
    "RateLimitedError",
    "RemovedError",
    "RequestError",
    "RosterError",
    "SignInRequiredError",
    "StorageUnavailableError",
    "UnwrapError",
    "format_validation_error",
    "shown",
]


def shown(value: object, limit: int = 60) -> str:
    """Client input as it goes between backticks in a message: one line, bounded, no backticks.

    Control characters are escaped as in JSON, so a message stays one line whatever was sent.
    """
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = json.dumps(text, ensure_ascii=False)[1:-1].replace('\\"', '"').replace("`", "'")
    # bidi controls and invisible characters too: a message must read as what was sent
    text = INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class MeridianError(Exception):
    """Base class: something Meridian refuses, explained in one line."""

    exit_code: int = 1
    http_status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(MeridianError):
    """Raised when input from a client (a request, a file) is malformed."""

    exit_code = 2
    http_status = 422


class RequestError(InputError):
    """Raised when a decision request does not match the public request contract."""


@dataclass(frozen=True, slots=True)
class BundleProblem:
    """One problem in a policy bundle, located in its source file when known."""

    message: str
    source: str = "<bundle>"
    line: int | None = None

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.message}"


class BundleError(InputError):
    """Raised when a policy bundle fails validation; lists every problem found."""

    def __init__(self, problems: list[BundleProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class NotFoundError(MeridianError):
    """Raised when a named object (a bundle file, a partner) does not exist."""

    exit_code = 1
    http_status = 404


class AuthenticationError(MeridianError):
    """Raised when a request carries no API token, or one that is unknown or revoked."""

    exit_code = 77  # EX_NOPERM
    http_status = 401


class ForbiddenError(MeridianError):
    """Raised when the caller's role may not call an endpoint or command at all."""

    exit_code = 77
    http_status = 403


class GrantError(AuthenticationError):
    """Raised when a signed grant (a relay or key grant) is missing, forged, expired or misdirected."""


class SignInRequiredError(MeridianError):
    """A page needs a signed-in viewer and there is none: the browser goes to ``/login``."""

    exit_code = 77
    http_status = 303

    def __init__(self, next_path: str, message: str = "sign in to see this page") -> None:
        super().__init__(message)
        self.location = f"/login?next={quote(next_path, safe='/')}"


class FenceError(ForbiddenError):
    """Raised by a region node asked to carry or key a meeting whose allowed set excludes it."""


class RemovedError(ForbiddenError):
    """Raised when a participant this relay was ordered to drop presents its grant again."""


class EndedError(MeridianError):
    """Raised when a grant or link for a meeting this relay was told has ended is presented."""

    exit_code = 1
    http_status = 410


class UnwrapError(MeridianError):
    """Raised when a wrapped key or a sealed frame fails to open: wrong key, context or bytes."""

    exit_code = 1
    http_status = 400


class RosterError(UnwrapError):
    """Raised when a roster is refused: not signed by the control plane, or malformed."""


class FrameDroppedError(UnwrapError):
    """Raised when a receiver drops a frame; :attr:`reason` says which counter it goes to.

    ``reason`` is one of :class:`meridian.keys.DropReason` (a ``StrEnum``, so a plain string
    here: the keys package sits above this module).
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class DeniedError(MeridianError):
    """Raised when the bundle in force refuses an action; ``decision`` is the refusing decision.

    The decision is the frozen value the engine gave (its alternative partners with the
    registry's contacts); the doors write it out with ``Decision.to_dict``. ``None`` only for a
    refusal that arrived without a decision readable as one (a client told so by a server).

    ``advice``, when the refusal comes with it (a sign-up does), is what the person can do
    instead: :class:`meridian.policy.explain.Advice` values, each with ``text`` and ``to_dict``.
    ``None`` means no advice is offered for this action; an empty tuple, that there is none.
    """

    exit_code = 3
    http_status = 403

    def __init__(
        self, message: str, decision: Decision | None, *, advice: tuple[Any, ...] | None = None
    ) -> None:
        super().__init__(message)
        self.decision = decision
        self.advice = advice


class ConflictError(MeridianError):
    """Raised when an action clashes with the current state (a review of an active account)."""

    exit_code = 1
    http_status = 409


class ConfigurationError(MeridianError):
    """Raised when the operator's configuration (a GeoIP database path, say) is unusable."""

    exit_code = 78  # EX_CONFIG from sysexits.h
    http_status = 500


class StorageUnavailableError(ConfigurationError):
    """Raised when the database stays locked or unreachable past the wait (HTTP 503)."""

    http_status = 503
    exit_code = 75  # EX_TEMPFAIL


class KeyServerError(MeridianError):
    """Raised when the key server of a meeting's key region cannot give a key: the join fails."""

    exit_code = 69  # EX_UNAVAILABLE
    http_status = 503


class ProofError(MeridianError):
    """Raised when a Merkle proof, a checkpoint or its signature does not verify."""

    exit_code = 1
    http_status = 400


class LogIntegrityError(MeridianError):
    """Raised when a log (live or exported) is not what its signed checkpoints commit to.

    ``problems`` lists each finding as one line, located at the entry index or checkpoint it is
    about, with what was expected and what was found.
    """

    exit_code = 1
    http_status = 500

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0] if self.problems else "log does not verify"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first + more)


class RateLimitedError(MeridianError):
    """Raised when a caller (a token or a client address) passed one of the service's rate limits.

    ``retry_after`` is the whole number of seconds until the limit lets the next one through
    (the HTTP door sends it as ``Retry-After``).
    """

    exit_code = 75  # EX_TEMPFAIL
    http_status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LogTamperedError(LogIntegrityError):
    """Raised when the live log's stored entries are not what it committed to.

    A self-check (a read, or start-up) found an entry whose bytes do not hash to its leaf, or
    leaves that do not give a signed root. The mismatch is recorded, and until the stored log is
    restored the service refuses reports, proofs and entries, and signs no checkpoint (503).
    """

    http_status = 503


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc)


def format_validation_error(exc: ValidationError, what: str = "request") -> str:
    """One lowercase line for the first problem pydantic found, naming the field and the input."""
    err = exc.errors(include_url=False)[0]
    path = _field_path(err["loc"]) or what
    kind = err["type"]
    given = err.get("input")
    if kind == "missing":
        return f"{what}: missing field `{shown(path)}`"
    if kind == "extra_forbidden":
        return f"{what}: unknown field `{shown(path)}`"
    if kind == "timezone_aware":
        return f"{what}: `{shown(path)}` needs a time zone: `{shown(given)}` has none, add `Z` or an offset"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"{what}: `{shown(path)}` must be an object, got `{shown(given)}`"
    message = err["msg"]
    message = message[0].lower() + message[1:] if message else "is invalid"
    message = message.replace("\n", " ")
    if isinstance(given, dict | list):
        return f"{what}: `{shown(path)}`: {message}"
    return f"{what}: `{shown(path)}` is `{shown(given)}`: {message}"


class LogFailedError(MeridianError):
    """``meridian audit verify``: the log did not verify (its problems were printed above)."""

    exit_code = 1

    def __init__(self, count: int) -> None:
        super().__init__(f"the log does not verify: {count} problem{'s' if count != 1 else ''}")


class ExportFailedError(MeridianError):
    """The export given with ``--log`` does not verify: the message lists each problem."""

    def __init__(self, log: Path, cause: LogIntegrityError) -> None:
        self.exit_code = cause.exit_code
        lines = [f"export `{log}` does not verify:", *cause.problems]
        super().__init__("\n".join(lines))
