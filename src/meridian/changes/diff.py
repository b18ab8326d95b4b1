"""The diff a change carries: what the proposed bundle changes against the bundle in force.

A change stores its diff's JSON form and digest, and every log entry of the change names that
digest, so whoever approves can be held to what they read. The diff here is the bundle's
document compared part by part (rules by id, partners, plans, channels, jurisdictions, the
location rules): it says *where* the text differs. Which requests that changes, and when, is
what the replay (``changes/replay.py``) answers from the log and the customers of today.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ..policy.loader import LoadedBundle

__all__ = ["BundleDiff", "Diff", "bundle_diff"]


class Diff(Protocol):
    """What the workflow needs of a diff: a digest, and a JSON form to store and show."""

    @property
    def digest(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class BundleDiff:
    """The parts of two bundle documents that differ, keyed by section and name."""

    old: dict[str, str]
    new: dict[str, str]
    #: section -> {"added": [...], "removed": [...], "changed": [...]} (only sections that differ)
    sections: dict[str, dict[str, list[str]]]

    @property
    def digest(self) -> str:
        """``sha256:`` over the canonical JSON of :meth:`to_dict`."""
        body = orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS)
        return "sha256:" + hashlib.sha256(body).hexdigest()

    @property
    def empty(self) -> bool:
        return not self.sections

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": dict(self.old),
            "new": dict(self.new),
            "sections": {k: {p: list(v) for p, v in d.items()} for k, d in self.sections.items()},
        }


def _by_key(doc: dict[str, Any], section: str) -> dict[str, Any]:
    value = doc.get(section)
    if isinstance(value, list):
        return {str(item.get("id", index)): item for index, item in enumerate(value)}
    if isinstance(value, dict):
        return dict(value)
    return {"": value}


def bundle_diff(old: LoadedBundle, new: LoadedBundle) -> BundleDiff:
    """Compare ``old`` and ``new`` section by section (the same bundle gives an empty diff)."""
    a = old.document.model_dump(mode="json")
    b = new.document.model_dump(mode="json")
    sections: dict[str, dict[str, list[str]]] = {}
    for section in sorted(set(a) | set(b)):
        if section in ("version",):
            continue
        left, right = _by_key(a, section), _by_key(b, section)
        added = sorted(set(right) - set(left))
        removed = sorted(set(left) - set(right))
        changed = sorted(k for k in set(left) & set(right) if left[k] != right[k])
        parts = {
            name: keys
            for name, keys in (("added", added), ("removed", removed), ("changed", changed))
            if keys
        }
        if parts:
            sections[section] = parts

    def ref(loaded: LoadedBundle) -> dict[str, str]:
        doc = loaded.document
        return {"name": doc.bundle, "version": doc.version, "digest": loaded.digest}

    return BundleDiff(ref(old), ref(new), sections)
