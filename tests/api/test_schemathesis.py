"""Never a 500 for anything a client can send: Schemathesis over the whole OpenAPI document.

The real server (uvicorn on loopback, the ``live`` fixture) on both backends; every operation in
``/openapi.json`` gets the schema's examples, Schemathesis's coverage cases (valid and invalid:
boundaries, wrong types, missing fields, NUL and other characters a database refuses) and at
least :data:`EXAMPLES` fuzzed requests. Each response must not be a server error and must
conform to the document: a declared status code, the declared content type, a body matching the
declared schema.

Path parameters and the ``account`` / ``partner`` fields of bodies are drawn partly from objects
that exist (seeded first: accounts in each state, a live subscription, one waiting for transfer
to a partner), so the fuzzing reaches past "not found" into the code that changes state.
"""

from __future__ import annotations

import tempfile
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.storage

#: fuzzed requests per operation (on top of the schema's examples and the coverage cases)
EXAMPLES = 100

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

VALID_USCC = "91110000600037341L"
PILOT_USCC = "91350100M0001TGQXM"


def _seed(live: Any) -> dict[str, list[str]]:
    """Objects worth reaching: accounts in each state, a live subscription, one to transfer."""
    ops = live.client("operator")

    def post(path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
        r = ops.post(path, json=body)
        assert r.status_code == status, r.text
        data: dict[str, Any] = r.json()
        return data

    # Mainland China before direct sales ended: a subscription that renewal moves to a partner.
    live.clock.set("2020-07-01T10:00:00+08:00")
    cn = post(
        "/v1/accounts",
        {"type": "organization", "name": "Shanghai Co", "country": "CN", "org_id": VALID_USCC},
    )["account"]["id"]
    cn_sub = post("/v1/checkout", {"account": cn, "plan": "pro", "channel": "direct"})
    live.clock.set("2020-09-02T10:00:00+08:00")
    renewed = post("/v1/renewals", {}, 200)
    assert renewed["transfer_required"] == 1, renewed
    pending = post(
        "/v1/accounts",
        {"type": "organization", "name": "Fuzhou Co", "country": "CN", "org_id": PILOT_USCC},
    )["account"]["id"]
    us = post("/v1/accounts", {"type": "organization", "name": "US Co", "country": "US"})
    us_sub = post("/v1/checkout", {"account": us["account"]["id"], "plan": "pro", "channel": "direct"})
    free = post("/v1/accounts", {"type": "individual", "name": "Free", "country": "HK"})
    return {
        "account_id": [cn, pending, us["account"]["id"], free["account"]["id"]],
        "subscription_id": [cn_sub["subscription"]["id"], us_sub["subscription"]["id"]],
        "partner_id": ["bizconf", "suirui-zhumu", "systec-umeet"],
    }


def _swap(values: Any, names: dict[str, str]) -> st.SearchStrategy[Any]:
    """Each named key keeps its generated value or takes the id of a seeded object."""
    if not isinstance(values, dict):
        return st.just(values)
    options: dict[str, st.SearchStrategy[Any]] = {}
    for key, value in values.items():
        pool = _KNOWN.get(names.get(key, ""), [])
        options[key] = st.sampled_from([value, *pool]) if pool else st.just(value)
    return st.fixed_dictionaries(options)


def _openapi() -> dict[str, Any]:
    """The document ``/openapi.json`` serves, built from the app without starting it."""
    from meridian.api import create_app
    from meridian.runtime import Runtime
    from meridian.settings import Settings

    with tempfile.TemporaryDirectory() as folder:  # never opened: the document needs no database
        runtime = Runtime(Settings(database_url=f"sqlite:///{folder}/unused.db"))
        document: dict[str, Any] = create_app(runtime=runtime).openapi()
        runtime.close()
    return document


#: ids of the seeded objects of the test running now, read by the hooks below when they draw
_KNOWN: dict[str, list[str]] = {}
_PATH_KEYS = {"account_id": "account_id", "subscription_id": "subscription_id", "partner_id": "partner_id"}
_BODY_KEYS = {"account": "account_id", "partner": "partner_id"}

schema = schemathesis.openapi.from_dict(
    _openapi(),
    config=schemathesis.Config.from_dict(
        {"generation": {"mode": "all", "deterministic": True, "max-examples": EXAMPLES}}
    ),
)


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> Any:
    return _swap(path_parameters, _PATH_KEYS)


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    return _swap(body, _BODY_KEYS)


@pytest.fixture
def seeded(live: Any) -> Any:
    _KNOWN.clear()
    _KNOWN.update(_seed(live))
    yield live
    _KNOWN.clear()


def test_the_document_is_what_the_server_serves(live: Any) -> None:
    assert live.client().get("/openapi.json").json() == schema.raw_schema


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_every_response_as_documented(case: Any, seeded: Any) -> None:
    token = seeded.tokens["operator"]
    case.call_and_validate(
        base_url=seeded.url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS, timeout=30
    )
