"""A log entry: one decision or change as the canonical bytes the Merkle log hashes.

An entry is a JSON object in the RFC 8785 canonical form (keys sorted, no insignificant
whitespace, UTF-8), so anyone can re-derive its bytes from its content and two writers never
produce different bytes for the same facts::

    {"action": "subscription.checkout", "actor": "user:tok_…", "at": "2020-08-23T00:00:00Z",
     "bundle": "sha256:…", "decision": {...} | null, "details": {...},
     "recorded_at": "2026-11-28T11:50:00.123456Z", "subject": {"id": "sub_…", "kind": "…"},
     "v": 1}

The position of an entry is not inside it: the tree commits to positions.

For values made only of strings, integers within ±2**53, booleans, nulls, lists and objects with
ASCII keys, RFC 8785 and ``orjson.dumps(value, option=OPT_SORT_KEYS)`` give the same bytes (the
same string escapes as ``json.dumps(ensure_ascii=False)``, checked over every code point; see
``api/routes/common.py``), and orjson is about 40× faster: 0.8 µs against 32 µs through the
``rfc8785`` package for an entry holding a 900-byte decision (timeit, this project's machines).
The log's append rate depends on it (bench/audit.py, BENCHMARKS.md "Audit log"). Anything else —
a float, a non-ASCII key — goes through ``rfc8785``, which writes numbers in the ECMAScript form
and orders keys by UTF-16 code units, as the standard asks.

Finding out whether a value is that simple is a walk over it (:func:`simple`), which costs more
than the serialisation; :func:`entry_bytes` walks only the caller's ``details``. A decision is
Meridian's own value (:meth:`~meridian.policy.decision.Decision.to_dict`): strings, booleans and
nulls with fixed ASCII keys, which a test holds it to.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import rfc8785

from ..errors import InputError

__all__ = ["VERSION", "canonical", "entry_bytes", "entry_object", "instant", "simple"]

VERSION = 1
#: the largest integer an RFC 8785 document can carry exactly (an IEEE 754 double's)
_SAFE = 2**53 - 1


def instant(at: datetime) -> str:
    """An aware instant in ISO 8601 UTC with ``Z``, as entries write them."""
    if at.tzinfo is None:
        raise InputError("a log entry's instants must be timezone-aware")
    text = at.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


def simple(value: Any) -> bool:
    """True if ``value`` holds no float, no integer beyond ±2**53 and no non-ASCII key."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii() or not simple(item):
                return False
        return True
    if kind is list or kind is tuple:
        return all(simple(item) for item in value)
    if kind is int:
        return bool(-_SAFE <= value <= _SAFE)
    # a float, or anything that is not plain JSON: rfc8785 writes the one, refuses the other
    return False


def canonical(value: dict[str, Any], *, checked: bool = False) -> bytes:
    """``value`` as RFC 8785 canonical JSON bytes.

    ``checked`` says the caller knows ``value`` is :func:`simple` (the walk is skipped).
    """
    if checked or simple(value):
        try:
            return orjson.dumps(value, option=_OPTIONS)
        except orjson.JSONEncodeError:
            pass  # a lone surrogate, a subclass of str: let rfc8785 judge it
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, UnicodeError) as exc:
        raise InputError(f"a log entry must be plain JSON: {exc}") from None


def entry_bytes(obj: dict[str, Any]) -> bytes:
    """The canonical bytes of an :func:`entry_object`, walking only its ``details``."""
    return canonical(obj, checked=simple(obj["details"]))


def entry_object(
    *,
    at: datetime,
    recorded_at: datetime,
    actor: str,
    action: str,
    subject_kind: str,
    subject_id: str | None,
    bundle_digest: str,
    decision: dict[str, Any] | None,
    details: dict[str, Any],
) -> dict[str, Any]:
    """The entry's content, before :func:`canonical` turns it into bytes."""
    return {
        "v": VERSION,
        "at": instant(at),
        "recorded_at": instant(recorded_at),
        "actor": actor,
        "action": action,
        "subject": {"kind": subject_kind, "id": subject_id},
        "bundle": bundle_digest,
        "decision": decision,
        "details": details,
    }
