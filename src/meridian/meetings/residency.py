"""What a meeting's residency receipt says, and its check offline: pure functions, no database.

A receipt (docs/audit.md, "Meeting residency receipts") is the meeting's own log entries, each
with its inclusion proof against one signed checkpoint, plus a summary of where the meeting
went. One entry is the **seal** (``meeting.receipt``), recorded when the meeting ended: it lists
the positions of every entry about the meeting before it, each participant's key epochs, and
every region node's statement of its counters for the meeting, signed by that node's own key.

:func:`summarize` reads the summary from the entries; the service and the verifier call the same
function, so a summary that differs from its entries is a tampered receipt.
:func:`verify_receipt` checks a receipt with the log's key and the nodes' keys and raises
:class:`~meridian.errors.ProofError` with one line naming the first thing that is wrong.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..audit.merkle import leaf_hash, verify_inclusion
from ..audit.note import NoteVerifier
from ..errors import InputError, ProofError, shown
from ..keys.statements import NodeStatement, open_statement

__all__ = [
    "RECEIPT_FORMAT",
    "SEAL_ACTION",
    "ReceiptCheck",
    "summarize",
    "verify_receipt",
]

RECEIPT_FORMAT = "meridian-receipt/1"
#: the action of the entry that seals a meeting's receipt when it ends
SEAL_ACTION = "meeting.receipt"
#: a receipt holds at most this many entries (a meeting of 1,000 participants has ~2,100)
_MAX_ENTRIES = 20_000

#: checks a checkpoint note's cosignatures (h18a's quorum check), or ``None`` for none
CosignatureCheck = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ReceiptCheck:
    """A receipt that verified: the meeting, what it touched, and under which checkpoint."""

    meeting: str
    participants: int
    entries: int
    size: int
    carried_in: tuple[str, ...]
    keys_from: tuple[str, ...]
    allowed: tuple[str, ...]

    @property
    def outside(self) -> tuple[str, ...]:
        """Regions that carried or keyed the meeting although its allowed set left them out."""
        touched = set(self.carried_in) | set(self.keys_from)
        return tuple(sorted(touched - set(self.allowed)))

    def where(self) -> str:
        """``carried only in HK, US; keys only from US``."""
        carried = ", ".join(self.carried_in) or "no region"
        keys = ", ".join(self.keys_from) or "no region"
        return f"carried only in {carried}; keys only from {keys}"


def _statement_text(node: Mapping[str, Any]) -> NodeStatement | None:
    """A node statement as it reads, unchecked (the verifier checks its signature)."""
    try:
        data = json.loads(node["statement"])
        counters = {str(k): int(v) for k, v in data["counters"].items()}
        return NodeStatement(str(data["region"]), str(data["meeting"]), str(data["at"]), counters)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def summarize(meeting_id: str, entries: Sequence[tuple[int, Mapping[str, Any]]]) -> dict[str, Any]:
    """Where the meeting went, read from its entries ``(position, entry)`` (the seal among them).

    Participants come from the ``meeting.join`` entries it allowed (region, country, the
    location evidence that placed it, when), ``meeting.leave`` (when it left, its epochs) and
    ``meeting.end``; the nodes from the seal's statements. ``carried_in`` is every region a
    participant was placed in or whose node counted traffic; ``keys_from`` the meeting's key
    region and every node that wrapped a key for it.
    """
    meeting: dict[str, Any] = {"id": meeting_id}
    people: dict[str, dict[str, Any]] = {}
    seal: Mapping[str, Any] = {}
    ended: str | None = None
    for index, entry in entries:
        action = entry.get("action")
        details = entry.get("details") or {}
        at = entry.get("at")
        if action == "meeting.create":
            meeting.update(
                host=details.get("host"),
                allowed_regions=sorted(details.get("regions") or []),
                key_region=details.get("key_region"),
                created_at=at,
            )
        elif action == "meeting.join" and details.get("decision") == "allow":
            pid = str(details.get("participant"))
            location = (entry.get("decision") or {}).get("location")
            people[pid] = {
                "participant": pid,
                "name": details.get("name"),
                "region": details.get("dc"),
                "country": details.get("country"),
                "evidence": location,
                "joined": at,
                "left": None,
                "epochs": [],
                "entries": [index],
            }
        elif action == "meeting.leave" and str(details.get("participant")) in people:
            person = people[str(details["participant"])]
            if person["left"] is None:
                person["left"] = at
            person["epochs"] = sorted(set(person["epochs"]) | set(details.get("epochs") or []))
            person["entries"].append(index)
        elif action == "meeting.end":
            ended = at
        elif action == SEAL_ACTION:
            seal = details
    meeting["ended_at"] = ended
    for pid, epochs in (seal.get("epochs") or {}).items():
        if pid in people:
            people[pid]["epochs"] = sorted(set(people[pid]["epochs"]) | set(epochs))
    key_region = meeting.get("key_region")
    for person in people.values():
        person["key_region"] = key_region
        if person["left"] is None:
            person["left"] = ended
    nodes: dict[str, Any] = {}
    carried = {str(p["region"]) for p in people.values() if p["region"]}
    keys = {str(key_region)} if key_region and people else set()
    for region, node in sorted((seal.get("nodes") or {}).items()):
        statement = _statement_text(node) if "statement" in node else None
        if statement is None:
            nodes[region] = {"error": str(node.get("error", "no statement"))}
            continue
        nodes[region] = {"at": statement.at, "counters": dict(statement.counters)}
        if statement.carried():
            carried.add(region)
        if statement.keys:
            keys.add(region)
    return {
        "meeting": meeting,
        "participants": sorted(
            people.values(), key=lambda p: (p["joined"] or "", p["participant"])
        ),
        "nodes": nodes,
        "carried_in": sorted(carried),
        "keys_from": sorted(keys),
    }


def _b64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise ProofError(f"{what} is not base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProofError(f"{what} `{shown(text)}` is not base64") from None


def _difference(claimed: Any, actual: Mapping[str, Any]) -> str | None:
    """The first place the receipt's summary differs from what its entries say, in words."""
    if not isinstance(claimed, dict):
        return "the receipt has no summary"
    mine = {p["participant"]: p for p in actual["participants"]}
    theirs: dict[str, Any] = {}
    said_people = claimed.get("participants")
    if not isinstance(said_people, list):
        return "the receipt's summary has no `participants` list"
    for p in said_people:
        if isinstance(p, dict):
            theirs[str(p.get("participant"))] = p
    for pid in mine:
        if pid not in theirs:
            return f"participant `{shown(pid)}` is in the log's entries but not in the receipt"
    for pid, person in theirs.items():
        if pid not in mine:
            return f"participant `{shown(pid)}` is in the receipt but in none of its log entries"
        for field, value in mine[pid].items():
            if person.get(field) != value:
                return (
                    f"participant `{shown(pid)}`: the receipt says {field} "
                    f"`{shown(person.get(field))}`, the log says `{shown(value)}`"
                )
    said_nodes = claimed.get("nodes")
    nodes: dict[str, Any] = said_nodes if isinstance(said_nodes, dict) else {}
    for region, node in actual["nodes"].items():
        said = nodes.get(region)
        if not isinstance(said, dict):
            return f"node `{shown(region)}` is in the seal but not in the receipt"
        said_counters = said.get("counters")
        if not isinstance(said_counters, dict):
            return f"node `{shown(region)}`: the receipt gives no `counters` object"
        for name, value in (node.get("counters") or {}).items():
            got = said_counters.get(name)
            if got != value:
                return (
                    f"node `{shown(region)}`: the receipt says {name} `{shown(got)}`, "
                    f"its signed statement says `{value}`"
                )
        if said != node:
            return f"node `{shown(region)}`: the receipt is not what its statement says"
    for region in nodes:
        if region not in actual["nodes"]:
            return f"node `{shown(region)}` is in the receipt but not in the seal"
    for field in ("meeting", "carried_in", "keys_from"):
        if claimed.get(field) != actual[field]:
            return (
                f"the receipt says {field} `{shown(claimed.get(field))}`, its entries say "
                f"`{shown(actual[field])}`"
            )
    return None


def verify_receipt(
    data: Any,
    *,
    log_key: str,
    node_keys: Mapping[str, str],
    cosignatures: CosignatureCheck | None = None,
) -> ReceiptCheck:
    """Check a receipt offline; what it shows, or :class:`ProofError` naming what is wrong.

    ``log_key`` is the log's verifier key (``meridian audit key``); ``node_keys`` each region
    node's public key (``GET /v1/node/key`` on the node), by region: a statement from a node
    without a trusted key is refused, as is a node that gave no statement (then where the
    meeting went cannot be shown). ``cosignatures``, when given, checks the checkpoint's
    witness cosignatures and raises if the quorum is not met.
    """
    if not isinstance(data, dict) or data.get("format") != RECEIPT_FORMAT:
        raise ProofError(f"not a receipt: expected `format` `{RECEIPT_FORMAT}`")
    meeting_id = data.get("meeting")
    raw_entries = data.get("entries")
    log = data.get("log")
    if not isinstance(meeting_id, str) or not isinstance(raw_entries, list):
        raise ProofError("not a receipt: it names no `meeting` or has no `entries` list")
    if len(raw_entries) > _MAX_ENTRIES:
        raise ProofError(f"the receipt holds more than {_MAX_ENTRIES} entries")
    note = log.get("checkpoint") if isinstance(log, dict) else None
    try:
        verifier = NoteVerifier.from_vkey(log_key)
    except InputError as exc:
        raise ProofError(exc.message) from None
    try:
        checkpoint = verifier.open(note if isinstance(note, str) else "")
    except ProofError as exc:
        raise ProofError(
            f"the receipt's checkpoint does not verify with the log key: {exc}"
        ) from None
    if cosignatures is not None:
        cosignatures(note if isinstance(note, str) else "")
    entries: list[tuple[int, dict[str, Any]]] = []
    seen: set[int] = set()
    for number, item in enumerate(raw_entries):
        if not isinstance(item, dict):
            raise ProofError(f"receipt entry {number} is not an object")
        index, text, proof = item.get("index"), item.get("entry"), item.get("proof")
        if not isinstance(index, int) or isinstance(index, bool) or not isinstance(text, str):
            raise ProofError(f"receipt entry {number} has no `index` or no `entry` text")
        if not isinstance(proof, list):
            raise ProofError(f"entry {index}: its `proof` is not a list")
        if index in seen:
            raise ProofError(f"entry {index} is in the receipt twice")
        seen.add(index)
        path = [_b64(h, f"entry {index}: proof hash") for h in proof]
        try:
            verify_inclusion(
                leaf_hash(text.encode()), index, checkpoint.size, path, checkpoint.root
            )
        except ProofError as exc:
            raise ProofError(f"entry {index} is not in the signed log: {exc}") from None
        try:
            entry = json.loads(text)
        except ValueError:
            raise ProofError(f"entry {index} is not JSON") from None
        subject = entry.get("subject") if isinstance(entry, dict) else None
        if subject != {"kind": "meeting", "id": meeting_id}:
            raise ProofError(f"entry {index} is not about meeting `{shown(meeting_id)}`")
        entries.append((index, entry))
    entries.sort(key=lambda pair: pair[0])
    seals = [(i, e) for i, e in entries if e.get("action") == SEAL_ACTION]
    if len(seals) != 1:
        raise ProofError(
            f"the receipt holds {len(seals)} seals (`{SEAL_ACTION}` entries) of meeting "
            f"`{shown(meeting_id)}`, not one"
        )
    seal_index, seal = seals[0]
    details = seal.get("details") or {}
    listed = details.get("entries")
    if not isinstance(listed, list):
        raise ProofError(f"the seal (entry {seal_index}) lists no entries")
    for index in listed:
        if index not in seen:
            raise ProofError(
                f"entry {shown(index)}, listed by the seal, is missing from the receipt"
            )
    extra = seen - set(listed) - {seal_index}
    if extra:
        raise ProofError(f"entry {min(extra)} is in the receipt but not listed by the seal")
    nodes = details.get("nodes")
    if not isinstance(nodes, dict):
        raise ProofError(f"the seal (entry {seal_index}) holds no node statements")
    for region, node in sorted(nodes.items()):
        if not isinstance(node, dict) or "statement" not in node:
            why = node.get("error") if isinstance(node, dict) else None
            raise ProofError(
                f"node `{shown(region)}` gave no statement ({shown(why)}): where the meeting "
                "went cannot be shown"
            )
        trusted = node_keys.get(region)
        if trusted is None:
            raise ProofError(
                f"no trusted key for node `{shown(region)}`: give it as `--node-key "
                f"{shown(region)}=KEY` (`GET /v1/node/key` on that node)"
            )
        try:
            statement = open_statement(node["statement"], node.get("signature", ""), trusted)
        except ProofError as exc:
            raise ProofError(f"node `{shown(region)}`'s statement: {exc}") from None
        if statement.region != region or statement.meeting != meeting_id:
            raise ProofError(
                f"node `{shown(region)}`'s statement is of region `{shown(statement.region)}`, "
                f"meeting `{shown(statement.meeting)}`"
            )
    summary = summarize(meeting_id, entries)
    for person in summary["participants"]:
        if person["region"] not in nodes:
            raise ProofError(
                f"participant `{shown(person['participant'])}` was placed in "
                f"`{shown(person['region'])}`, whose node has no statement in the seal"
            )
    problem = _difference(data.get("summary"), summary)
    if problem is not None:
        raise ProofError(problem)
    allowed = tuple(summary["meeting"].get("allowed_regions") or ())
    return ReceiptCheck(
        meeting=meeting_id,
        participants=len(summary["participants"]),
        entries=len(entries),
        size=checkpoint.size,
        carried_in=tuple(summary["carried_in"]),
        keys_from=tuple(summary["keys_from"]),
        allowed=allowed,
    )
