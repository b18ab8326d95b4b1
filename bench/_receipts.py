"""A meeting's residency receipt made without a service: the same entries, proofs and signatures.

``make_receipt(n)`` writes what the service records for a meeting of ``n`` participants
(``meeting.create``, a ``meeting.join`` and a ``meeting.leave`` each, ``meeting.end``, the seal
with every region node's signed statement) among ``filler`` entries about other things, builds
the RFC 9162 tree over them, signs a checkpoint and returns the receipt with the keys that check
it. Used by ``bench/receipts.py`` and by the tamper tests (tests/meetings/test_residency.py).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meridian.audit.entry import entry_bytes, entry_object
from meridian.audit.merkle import Tree, leaf_hash
from meridian.audit.note import Checkpoint, NoteSigner
from meridian.keys.statements import node_public_key, sign_statement
from meridian.meetings.residency import RECEIPT_FORMAT, SEAL_ACTION, summarize

__all__ = ["ORIGIN", "World", "make_receipt"]

ORIGIN = "meridian.example/log"
START = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
MEETING = "mtg_receipt"
#: where participants come from: (region placed in, country, a documentation address)
PLACES = [("US", "US", "8.8.8.8"), ("HK", "HK", "1.64.0.1")]


@dataclass
class World:
    receipt: dict[str, Any]
    log_key: str
    node_keys: dict[str, str]
    signer: NoteSigner
    tree: Tree
    #: every entry's bytes, by position
    entries: list[bytes] = field(default_factory=list)


def _entry(at: datetime, action: str, subject: tuple[str, str | None], **kw: Any) -> bytes:
    return entry_bytes(
        entry_object(
            at=at,
            recorded_at=at,
            actor=kw.pop("actor", "system:meridian"),
            action=action,
            subject_kind=subject[0],
            subject_id=subject[1],
            bundle_digest="sha256:" + "0" * 64,
            decision=kw.pop("decision", None),
            details=kw.pop("details", {}),
        )
    )


def make_receipt(
    participants: int = 3,
    *,
    filler: int = 50,
    regions: tuple[str, ...] = ("CN", "DE", "HK", "US"),
    forge: str | None = None,
) -> World:
    """A sealed meeting of ``participants`` and its receipt; ``forge`` names a node whose
    statement is signed by a key that is not that node's (what a lying control plane does)."""
    signer = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    node_keys = {r: Ed25519PrivateKey.generate() for r in regions}
    tree = Tree()
    data: list[bytes] = []
    mine: list[int] = []

    def add(entry: bytes, *, ours: bool = True) -> int:
        data.append(entry)
        tree.append(leaf_hash(entry))
        if ours:
            mine.append(len(data) - 1)
        return len(data) - 1

    for i in range(filler):
        add(_entry(START, "account.create", ("account", f"acc_{i}")), ours=False)
    meeting = ("meeting", MEETING)
    add(
        _entry(
            START,
            "meeting.create",
            meeting,
            details={"host": "acc_host", "regions": ["DE", "HK", "US"], "key_region": "US"},
        )
    )
    epochs: dict[str, list[int]] = {}
    zero = {"bytes_in": 0, "bytes_out": 0, "frames_in": 0, "frames_out": 0, "keys": 0}
    counters = {r: dict(zero) for r in {*regions, *(p[0] for p in PLACES)}}
    for i in range(participants):
        region, country, ip = PLACES[i % len(PLACES)]
        pid = f"p_{i:04d}"
        at = START + timedelta(seconds=i + 1)
        location = {
            "country": country,
            "evidence": [{"signal": "ip", "value": ip, "country": country}],
            "judged_under": [country],
        }
        add(
            _entry(
                at,
                "meeting.join",
                meeting,
                actor=f"anonymous:{ip}",
                decision={"decision": "allow", "location": location},
                details={
                    "participant": pid,
                    "decision": "allow",
                    "dc": region,
                    "country": country,
                    "reasons": [],
                    "name": f"person {i}",
                },
            )
        )
        epochs[pid] = [1]
        counters[region]["frames_in"] += 10
        counters[region]["bytes_in"] += 10_000
        counters["US"]["keys"] += 1
    leavers = [f"p_{i:04d}" for i in range(0, participants, 2)]
    for pid in leavers:
        at = START + timedelta(seconds=participants + 10)
        add(
            _entry(
                at,
                "meeting.leave",
                meeting,
                actor=f"participant:{pid}",
                details={"participant": pid, "dc": PLACES[int(pid[2:]) % 2][0], "epochs": [1]},
            )
        )
        del epochs[pid]
    end = START + timedelta(seconds=participants + 20)
    add(_entry(end, "meeting.end", meeting, actor="user:acc_host"))
    listed = list(mine)
    nodes: dict[str, Any] = {}
    for region in regions:
        key = Ed25519PrivateKey.generate() if region == forge else node_keys[region]
        signed = sign_statement(
            key, region=region, meeting=MEETING, counters=counters[region], at=end
        )
        nodes[region] = {**signed, "key": node_public_key(key)}
    seal = add(
        _entry(
            end,
            SEAL_ACTION,
            meeting,
            details={"entries": listed, "epochs": epochs, "nodes": nodes},
        )
    )
    size = tree.size
    note = signer.sign(Checkpoint(ORIGIN, size, tree.root(size), end))
    entries = []
    parsed = []
    for index in [*listed, seal]:
        proof = tree.inclusion_proof(index, size)
        text = data[index].decode()
        entries.append(
            {
                "index": index,
                "entry": text,
                "proof": [base64.b64encode(h).decode() for h in proof],
            }
        )
        parsed.append((index, json.loads(text)))
    receipt = {
        "format": RECEIPT_FORMAT,
        "meeting": MEETING,
        "log": {"origin": ORIGIN, "key": signer.verifier_key(), "checkpoint": note},
        "entries": entries,
        "summary": summarize(MEETING, parsed),
    }
    return World(
        receipt,
        signer.verifier_key(),
        {r: node_public_key(k) for r, k in node_keys.items()},
        signer,
        tree,
        data,
    )
