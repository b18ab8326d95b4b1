"""Entries are RFC 8785 canonical JSON, on the fast path and off it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import rfc8785
import yaml
from hypothesis import given
from hypothesis import strategies as st

from meridian.audit.entry import canonical, entry_bytes, entry_object, instant, simple
from meridian.errors import InputError
from meridian.policy.engine import Engine

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
AT = datetime(2020, 8, 23, tzinfo=UTC)


def _decisions():
    engine = Engine()
    for path in sorted(CORPUS.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            yield engine.decide(case["request"])


def test_every_corpus_decision_takes_the_fast_path_and_is_canonical():
    """A decision is Meridian's own value: plain JSON with ASCII keys, so the entry's walk may
    skip it (entry.py). This holds the decision to that, over every decision of the corpus."""
    seen = 0
    for decision in _decisions():
        value = decision.to_dict()
        assert simple(value), decision
        obj = entry_object(
            at=AT,
            recorded_at=AT,
            actor="system:meridian",
            action=f"test.{decision.action}",
            subject_kind="test",
            subject_id=None,
            bundle_digest=decision.bundle.digest,
            decision=value,
            details={"n": seen},
        )
        assert entry_bytes(obj) == rfc8785.dumps(obj)
        seen += 1
    assert seen > 100


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text() | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_canonical_equals_rfc8785_for_any_json(value):
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(InputError):
            canonical(value)
        return
    except UnicodeEncodeError:  # a lone surrogate: not UTF-8 at all
        with pytest.raises(InputError):
            canonical(value)
        return
    assert canonical(value) == expected


def test_what_is_not_plain_json_is_refused_in_one_line():
    for bad in ({"when": AT}, {"big": 2**60}, {"nan": float("nan")}, {1: "int key"}):
        with pytest.raises(InputError, match="plain JSON") as raised:
            canonical(bad)
        assert "\n" not in str(raised.value)
    with pytest.raises(InputError, match="timezone-aware"):
        instant(datetime(2020, 1, 1))
