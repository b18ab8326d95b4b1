"""Putting a bundle in force in a test as the service allows it: proposed by one operator,
approved by another (``PUT /v1/policy`` only proposes)."""

from __future__ import annotations

from typing import Any

__all__ = ["put_in_force"]


def put_in_force(
    server: Any, text: str, *, proposer: str = "operator", approver: str = "operator2"
) -> dict[str, Any]:
    """Propose ``text`` on ``server`` (a ``Live``) and approve it at once; the approved change."""
    proposed = server.client(proposer).post("/v1/policy/changes", json={"yaml": text, "days": 1})
    assert proposed.status_code == 201, proposed.text
    change = proposed.json()
    approved = server.client(approver).post(
        f"/v1/policy/changes/{change['id']}/approve", json={"diff": change["diff_digest"]}
    )
    assert approved.status_code == 200, approved.text
    result: dict[str, Any] = approved.json()
    assert result["state"] == "active", result
    return result
