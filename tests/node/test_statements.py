"""A region node's signed statement of a meeting's counters: only the control plane's credential
gets one, it is signed by the node's own key (public at /v1/node/key, kept across restarts in the
node's store, mode 0600) and it holds every counter the node keeps for the meeting."""

from __future__ import annotations

import stat

import httpx
import pytest

from meridian.errors import ProofError
from meridian.keys.statements import open_statement


def test_a_statement_answers_only_the_control_planes_credential(cluster, mint):
    url = cluster["US"].url + "/v1/statement/mtg_x"
    outsider = httpx.get(url, trust_env=False)
    assert outsider.status_code == 401
    assert outsider.json()["error"]["message"].startswith("missing credential")
    participant = httpx.get(url, headers={"Authorization": f"Bearer {mint()}"}, trust_env=False)
    assert participant.status_code == 401
    assert participant.json()["error"]["message"] == (
        "wrong grant: a `relay` grant where `admin` is needed"
    )


def test_a_statement_is_signed_by_the_nodes_own_key_and_holds_every_counter(
    cluster, admin, meeting
):
    us, de = cluster["US"], cluster["DE"]
    key = httpx.get(f"{us.url}/v1/node/key", trust_env=False).json()
    assert key["region"] == "US"
    other = httpx.get(f"{de.url}/v1/node/key", trust_env=False).json()["key"]
    assert other != key["key"]  # each node its own key
    answer = httpx.get(f"{us.url}/v1/statement/{meeting}", headers=admin, trust_env=False)
    assert answer.status_code == 200, answer.text
    signed = answer.json()
    statement = open_statement(signed["statement"], signed["signature"], key["key"])
    assert (statement.region, statement.meeting) == ("US", meeting)
    counters = httpx.get(f"{us.url}/v1/stats/{meeting}", headers=admin, trust_env=False).json()
    assert set(statement.counters) == set(counters) - {"region", "meeting"}
    with pytest.raises(ProofError, match="does not verify with the node's key"):
        open_statement(signed["statement"], signed["signature"], other)
    changed = signed["statement"].replace('"keys":0', '"keys":1')
    assert changed != signed["statement"]
    with pytest.raises(ProofError, match="does not verify with the node's key"):
        open_statement(changed, signed["signature"], key["key"])
    store = us.store / "node.key"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
