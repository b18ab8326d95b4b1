"""A region node's signed statement of what it carried for one meeting, and its check.

When a meeting ends the control plane asks each region node for a statement of its counters for
that meeting (``GET /v1/statement/{meeting}``); the node signs it with its own Ed25519 key
(``<store>/node.key``, made on its first start, never the control plane's), and the control
plane records it in the log as it came. Anyone holding the node's public key can then check the
figures without trusting the control plane (docs/audit.md, "Meeting residency receipts").

The statement is RFC 8785 canonical JSON::

    {"v":1,"kind":"meridian-node-statement","region":"US","meeting":"mtg_…",
     "at":"2026-12-03T12:00:00Z","counters":{"bytes_in":…,"keys":…,…}}

``counters`` is every counter the node keeps for the meeting (whatever
:meth:`~meridian.node.counters.NodeCounters.stats` holds: new counters flow in without a change
here). The signature is Ed25519 over exactly those bytes, sent as unpadded base64url; the text
travels as a string so nobody has to re-encode it to check it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..audit.entry import canonical, instant
from ..errors import InputError, ProofError, shown
from .wrap import b64url, from_b64url

__all__ = [
    "STATEMENT_KIND",
    "NodeStatement",
    "node_public_key",
    "open_statement",
    "sign_statement",
]

STATEMENT_KIND = "meridian-node-statement"
#: the most a statement's text may be: a node's counters for one meeting are a few hundred bytes
_MAX_BYTES = 16_384


@dataclass(frozen=True, slots=True)
class NodeStatement:
    """A node's statement, checked: which node, which meeting, when, and its counters."""

    region: str
    meeting: str
    at: str
    counters: Mapping[str, int]

    def carried(self) -> bool:
        """Whether the node relayed anything of the meeting (any counter but ``keys`` and the
        ``participants`` connected now is above zero)."""
        return any(v > 0 for k, v in self.counters.items() if k not in ("keys", "participants"))

    @property
    def keys(self) -> int:
        """Meeting keys this node's key server wrapped for the meeting."""
        return int(self.counters.get("keys", 0))


def node_public_key(key: Ed25519PrivateKey) -> str:
    """A node key's public half, raw 32 bytes as unpadded base64url (what verifiers are given)."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b64url(raw)


def sign_statement(
    key: Ed25519PrivateKey,
    *,
    region: str,
    meeting: str,
    counters: Mapping[str, Any],
    at: datetime,
) -> dict[str, str]:
    """The node's statement of ``counters`` for ``meeting``: ``{"statement", "signature"}``."""
    figures = {k: v for k, v in counters.items() if k not in ("region", "meeting")}
    text = canonical(
        {
            "v": 1,
            "kind": STATEMENT_KIND,
            "region": region,
            "meeting": meeting,
            "at": instant(at.astimezone(UTC)),
            "counters": figures,
        }
    )
    return {"statement": text.decode(), "signature": b64url(key.sign(text))}


def open_statement(statement: str, signature: str, public_key: str) -> NodeStatement:
    """Check a statement's signature with the node's ``public_key`` and read it.

    Raises :class:`~meridian.errors.ProofError` when the signature does not verify or the text is
    not a statement (one line naming what is wrong).
    """
    if not isinstance(statement, str) or len(statement) > _MAX_BYTES:
        raise ProofError("the node statement is not a string of at most 16 KiB")
    try:
        raw_key = from_b64url(public_key, "node key")
        key = Ed25519PublicKey.from_public_bytes(raw_key)
        sig = from_b64url(signature, "signature")
    except (InputError, ValueError) as exc:
        raise ProofError(f"node statement: {exc}") from None
    try:
        key.verify(sig, statement.encode())
    except InvalidSignature:
        raise ProofError("its signature does not verify with the node's key") from None
    try:
        data = json.loads(statement)
    except ValueError:
        raise ProofError("the node statement is not JSON") from None
    if not isinstance(data, dict) or data.get("kind") != STATEMENT_KIND or data.get("v") != 1:
        raise ProofError("the signed text is not a node statement")
    counters = data.get("counters")
    region, meeting, at = data.get("region"), data.get("meeting"), data.get("at")
    if (
        not isinstance(counters, dict)
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in counters.values())
        or not isinstance(region, str)
        or not isinstance(meeting, str)
        or not isinstance(at, str)
    ):
        raise ProofError(f"the node statement `{shown(statement[:60])}` is malformed")
    return NodeStatement(region, meeting, at, dict(counters))
