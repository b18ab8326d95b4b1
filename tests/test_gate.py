"""The decision stays one frozen value from the engine to the doors."""

from __future__ import annotations

from typing import Any

import pytest

import meridian
from meridian.errors import DeniedError
from meridian.gate import public_decision, raise_denied
from meridian.policy.decision import Decision
from meridian.storage.models import Partner

CN_PURCHASE = {
    "action": "purchase",
    "at": "2026-03-01T12:00:00Z",
    "subject": {"type": "organization", "country": "CN", "ip": "114.114.114.114"},
    "resource": {"channel": "direct"},
}


def test_a_decision_reads_back_from_its_public_form() -> None:
    allowed = meridian.decide({**CN_PURCHASE, "subject": {"type": "organization", "country": "DE"}})
    refused = meridian.decide(CN_PURCHASE)
    assert refused.alternatives.partners
    assert refused.location.evidence[1].source
    for decision in (allowed, refused):
        assert Decision.from_dict(decision.to_dict()) == decision


@pytest.mark.storage
def test_a_refusal_carries_the_frozen_decision_with_the_registrys_contacts(runtime: Any) -> None:
    decision = runtime.engine.decide(CN_PURCHASE)
    first = decision.alternatives.partners[0].id
    with runtime.db.write() as session:
        row = session.get(Partner, first)
        assert row is not None
        row.contact = "sales@example.cn"
    with runtime.db.read() as session:
        public = public_decision(session, decision)
        with pytest.raises(DeniedError) as refused:
            raise_denied(session, decision)
    carried = refused.value.decision
    assert isinstance(carried, Decision)
    assert carried.alternatives.partners[0].contact == "sales@example.cn"
    assert carried.to_dict() == public
    assert public["alternatives"]["partners"][0]["contact"] == "sales@example.cn"
    # the engine's own decision is untouched: the contact is added to a copy
    assert decision.alternatives.partners[0].contact is None
