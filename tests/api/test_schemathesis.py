"""Never a 500 for anything a client can send: Schemathesis over the whole OpenAPI document.

The real server (uvicorn on loopback, the ``live`` fixture) on both backends. Every operation in
``/openapi.json`` gets the schema's examples, Schemathesis's coverage cases (boundaries, wrong
types, missing and extra fields, undeclared methods) and :data:`EXAMPLES` fuzzed requests, valid
and invalid, as an operator. Every response must not be a server error and must be as documented:
a declared status code, the declared content type, a body matching the declared schema.

To get past "not found" and "unknown jurisdiction" into the code that writes, fuzzed values are
mixed with values that mean something: ids of seeded objects (accounts in each state, live
subscriptions, one waiting for a partner), the bundle's countries, plans, channels and partners,
instants at the ends of what a ``datetime`` holds, and strings a database may refuse (NUL and
other control characters, which PostgreSQL rejects and SQLite stores).

A shorter run does the same as a partner, as an account holder and without a token.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
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

#: fuzzed requests per operation as an operator (on top of the examples and coverage cases)
EXAMPLES = 100
#: fuzzed requests per operation for each of the other callers
OTHER_CALLER_EXAMPLES = 25

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

VALID_USCC = "91110000600037341L"
PILOT_USCC = "91350100M0001TGQXM"

#: values that mean something to the service, mixed into what is generated for these fields
_DICTIONARIES = {
    "countries": ["US", "CN", "cn", "HK", "MO", "TW", "DE", "XX"],
    "plans": ["free", "pro", "business", "enterprise"],
    "channels": ["direct", "online", "partner"],
    "partners": ["bizconf", "suirui-zhumu", "systec-umeet"],
    "jurisdictions": ["CN", "cn", "US", "HK"],
    # dates and instants, among them the ends of what a datetime holds (which may not survive the
    # conversion to UTC, or the addition of a term)
    "instants": [
        "2020-08-23",
        "2020-09-02T10:00:00+08:00",
        "2020-10-01T00:00:00Z",
        "0001-01-01",
        "0001-01-01T00:00:00+08:00",
        "8999-12-31T23:00:00Z",
        "9999-12-15T00:00:00Z",
        "9999-12-31",
        "9999-12-31T23:59:59-08:00",
    ],
    # strings a database may refuse or mangle: PostgreSQL rejects NUL in text
    "awkward": ["\x00", "a\x00b", "x@y\x00", "\x1b[0m", "\x7f", "\u0085", "\u2028", "\ufeff", "😀"],
}
_BINDINGS = {
    "body.country": "countries",
    "body.plan": "plans",
    "body.channel": "channels",
    "body.partner": "partners",
    "path.partner_id": "partners",
    "query.jurisdiction": "jurisdictions",
    "query.country": "countries",
    "query.at": "instants",
    "body.at": "instants",
    "body.starts_at": "instants",
}

#: ids of what the test running now seeded, by kind; the hooks below draw from it as they run
_SEEDED: dict[str, list[str]] = {}
#: fields that may take a seeded id, and the kind of id
_ID_FIELDS = {
    "account_id": "accounts",
    "account": "accounts",
    "subscription_id": "subscriptions",
}


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


schema = schemathesis.openapi.from_dict(
    _openapi(),
    config=schemathesis.Config.from_dict(
        {
            "dictionaries": {name: {"values": values} for name, values in _DICTIONARIES.items()},
            "parameters": {
                key: {"dictionary": name, "probability": 0.6} for key, name in _BINDINGS.items()
            },
            "generation": {
                "mode": "all",
                "deterministic": True,
                "max-examples": EXAMPLES,
                "dictionaries": {"string": {"dictionary": "awkward", "probability": 0.1}},
            },
        }
    ),
)


def _with_seeded_ids(values: Any) -> st.SearchStrategy[Any]:
    """Each id field keeps its generated value or takes a seeded object's id."""
    if not isinstance(values, dict):
        return st.just(values)
    options: dict[str, st.SearchStrategy[Any]] = {}
    for key, value in values.items():
        ids = _SEEDED.get(_ID_FIELDS.get(key, ""), [])
        options[key] = st.sampled_from([value, *ids]) if ids else st.just(value)
    return st.fixed_dictionaries(options)


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> Any:
    return _with_seeded_ids(path_parameters)


@schema.hook
def flatmap_query(context: Any, query: Any) -> Any:
    return _with_seeded_ids(query)


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    return _with_seeded_ids(body)


def _seed(live: Any) -> dict[str, list[str]]:
    """Accounts in each state, live subscriptions, one waiting for a partner; a user token."""

    def post(path: str, body: dict[str, Any], who: str = "operator", status: int = 201) -> Any:
        r = live.client(who).post(path, json=body)
        assert r.status_code == status, r.text
        return r.json()

    def account(name: str, country: str, who: str = "operator", **extra: str) -> str:
        body = {"type": "organization", "name": name, "country": country, **extra}
        return str(post("/v1/accounts", body, who)["account"]["id"])

    def subscription(account_id: str, who: str = "operator", **extra: str) -> str:
        body = {"account": account_id, "plan": "pro", "channel": "direct", **extra}
        return str(post("/v1/checkout", body, who)["subscription"]["id"])

    # Mainland China before direct sales ended: renewal after 23 August moves it to a partner.
    live.clock.set("2020-07-01T10:00:00+08:00")
    cn = account("Shanghai Co", "CN", org_id=VALID_USCC)
    to_transfer = subscription(cn)
    live.clock.set("2020-09-02T10:00:00+08:00")
    assert post("/v1/renewals", {}, status=200)["transfer_required"] == 1
    pending = account("Fuzhou Co", "CN", org_id=PILOT_USCC)
    customer = account("Beijing Co", "CN", "bizconf", org_id=VALID_USCC)
    sold = subscription(customer, "bizconf", channel="partner", partner="bizconf")
    us = account("US Co", "US")
    signed_up = post("/v1/accounts", {"type": "individual", "name": "Self", "country": "HK"}, None)
    live.tokens["user"] = signed_up["token"]
    # accounts with nothing bought yet, so that checkouts can succeed
    fresh = [account(f"Buyer {i}", country) for i, country in enumerate(["US", "HK", "TW"] * 3)]
    return {
        "accounts": [cn, pending, customer, us, signed_up["account"]["id"], *fresh],
        "subscriptions": [to_transfer, sold, subscription(us)],
    }


@pytest.fixture
def seeded(live: Any) -> Iterator[Any]:
    _SEEDED.clear()
    _SEEDED.update(_seed(live))
    yield live
    _SEEDED.clear()


def _call(case: Any, live: Any, who: str | None) -> None:
    headers = {} if who is None else {"Authorization": f"Bearer {live.tokens[who]}"}
    case.call_and_validate(base_url=live.url, headers=headers, checks=CHECKS, timeout=30)


def test_the_document_tested_is_the_one_served(live: Any) -> None:
    assert live.client().get("/openapi.json").json() == schema.raw_schema


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_as_an_operator(case: Any, seeded: Any) -> None:
    _call(case, seeded, "operator")


@pytest.mark.parametrize("who", ["bizconf", "user", None], ids=["partner", "user", "anonymous"])
@schema.parametrize()
@settings(
    max_examples=OTHER_CALLER_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_as_another_caller(case: Any, seeded: Any, who: str | None) -> None:
    _call(case, seeded, who)


import collections, atexit, json as _json
_STATS = collections.Counter()


@schema.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    _STATS[f"{case.operation.label} {response.status_code}"] += 1


atexit.register(lambda: open("/tmp/st_stats.json", "w").write(_json.dumps(sorted(_STATS.items()), indent=0)))
_MSGS = collections.Counter()


@schema.hook("after_call")
def after_call2(context: Any, case: Any, response: Any) -> None:
    if case.operation.label == "POST /v1/checkout" and response.status_code == 422:
        _MSGS[response.json()["error"]["message"][:90]] += 1


atexit.register(lambda: open("/tmp/st_msgs.json", "w").write(_json.dumps(_MSGS.most_common(40), indent=0)))
