"""Never a 500 for anything a client can send: Schemathesis over the whole OpenAPI document.

A real server per backend (uvicorn on loopback, as the ``live`` fixture, seeded once for the
module). Every operation in ``/openapi.json`` gets the schema's examples, Schemathesis's coverage
cases (boundaries, wrong types, missing and extra fields, undeclared methods) and
:data:`EXAMPLES` fuzzed requests, valid and invalid, as an operator; then a shorter fuzzing run
as a partner, as an account holder and without a token. Every response must not be a server
error and must be as documented: a declared status code, the declared content type, a body
matching the declared schema.

To get past "not found" and "unknown jurisdiction" into the code that writes, fuzzed values are
mixed with values that mean something: ids of seeded objects (accounts in each state, live
subscriptions, one waiting for a partner), the bundle's countries, plans, channels and partners,
instants at the ends of what a ``datetime`` holds, and strings a database may refuse (NUL and
other control characters, which PostgreSQL rejects and SQLite stores). Since fuzzing may miss a
field, every string field of every operation is also tried with each of :data:`AWKWARD`, every
body-taking operation with bodies no parser should choke on, and ``PUT /v1/policy`` with bundles
whose YAML escapes carry the same strings into the database.

The document is built from the app at import (a test checks it is the one the server serves):
Schemathesis's lazy loader (``schemathesis.pytest.from_fixture``) does not run on pytest 9.2.
"""

from __future__ import annotations

import itertools
import json
import tempfile
import urllib.parse
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
from tests.conftest import Live, SetClock, serve

pytestmark = [pytest.mark.storage, pytest.mark.slow]  # about 16 minutes on two cores

#: fuzzed requests per operation as an operator (on top of the examples and coverage cases)
EXAMPLES = 100
#: fuzzed requests per operation for each of the other callers
OTHER_CALLER_EXAMPLES = 15

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
    from meridian.runtime import Runtime
    from meridian.server import create_app
    from meridian.settings import Settings

    with tempfile.TemporaryDirectory() as folder:  # never opened: the document needs no database
        runtime = Runtime(Settings(database_url=f"sqlite:///{folder}/unused.db"))
        document: dict[str, Any] = create_app(runtime=runtime).openapi()
        runtime.close()
    return document


def _with_seeded_ids(values: Any) -> st.SearchStrategy[Any]:
    """Each id field keeps its generated value or takes a seeded object's id."""
    if not isinstance(values, dict):
        return st.just(values)
    options: dict[str, st.SearchStrategy[Any]] = {}
    for key, value in values.items():
        ids = _SEEDED.get(_ID_FIELDS.get(key, ""), [])
        options[key] = st.sampled_from([value, *ids]) if ids else st.just(value)
    return st.fixed_dictionaries(options)


def flatmap_path_parameters(context: Any, path_parameters: Any) -> Any:
    return _with_seeded_ids(path_parameters)


def flatmap_query(context: Any, query: Any) -> Any:
    return _with_seeded_ids(query)


def flatmap_body(context: Any, body: Any) -> Any:
    return _with_seeded_ids(body)


def _schema(max_examples: int, *, coverage: bool) -> Any:
    loaded = schemathesis.openapi.from_dict(
        _DOCUMENT,
        config=schemathesis.Config.from_dict(
            {
                "dictionaries": {name: {"values": v} for name, v in _DICTIONARIES.items()},
                "parameters": {
                    key: {"dictionary": name, "probability": 0.6} for key, name in _BINDINGS.items()
                },
                "generation": {
                    "mode": "all",
                    "deterministic": True,
                    "max-examples": max_examples,
                    "dictionaries": {"string": {"dictionary": "awkward", "probability": 0.1}},
                },
                "phases": {"coverage": {"enabled": coverage}},
            }
        ),
    )
    for hook in (flatmap_path_parameters, flatmap_query, flatmap_body):
        loaded.hook(hook)
    return loaded


_DOCUMENT = _openapi()
#: every operation as an operator: examples, coverage cases, fuzzing
schema = _schema(EXAMPLES, coverage=True)
#: every operation as another caller: fuzzing only
schema_for_others = _schema(OTHER_CALLER_EXAMPLES, coverage=False)


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


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres: Any
) -> Iterator[Any]:
    """One seeded server per backend for the whole module (a server per operation costs more
    than the operation's run)."""
    from meridian.runtime import Runtime
    from meridian.server import create_app
    from meridian.settings import Settings

    database = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'meridian.db'}"
    elif postgres is None:
        pytest.skip("no PostgreSQL (set MERIDIAN_TEST_POSTGRES_URL to require one)")
    else:
        database = postgres.new()
        url = postgres.url(database)
    clock = SetClock()
    # The contract is fuzzed here, not the rate limits (tests/api/test_limits.py): thousands of
    # requests from one address and one token, many of them with broken tokens.
    unlimited = {
        f"rate_{door}": "1000000/minute"
        for door in ("signup", "signup_authenticated", "signin", "auth_failures", "joins")
    }
    runtime = Runtime(Settings(database_url=url, renew_interval=0, **unlimited), clock=clock)
    runtime.start()
    address, stop = serve(create_app(runtime=runtime))
    live = Live(address, runtime, clock)
    live.token("operator", role="operator")
    live.token("bizconf", role="partner", partner_id="bizconf")
    try:
        _SEEDED.clear()
        _SEEDED.update(_seed(live))
        yield live
    finally:
        _SEEDED.clear()
        for client in live._clients:
            client.close()
        stop()
        if database is not None:
            postgres.drop(database)


_requests = itertools.count()


def _call(case: Any, live: Any, who: str | None) -> None:
    # A valid `Idempotency-Key` is made unique: else the first request to use one (coverage cases
    # all send the same) would be replayed or refused for every later one.
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and 0 < len(key) < 240 and key.isascii() and key.isprintable():
        case.headers["Idempotency-Key"] = f"{key}-{next(_requests)}"
    headers = {} if who is None else {"Authorization": f"Bearer {live.tokens[who]}"}
    case.call_and_validate(base_url=live.url, headers=headers, checks=CHECKS, timeout=30)


def test_the_document_tested_is_the_one_served(seeded: Any) -> None:
    assert seeded.client().get("/openapi.json").json() == schema.raw_schema


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
@schema_for_others.parametrize()
@settings(
    max_examples=OTHER_CALLER_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_as_another_caller(case: Any, seeded: Any, who: str | None) -> None:
    _call(case, seeded, who)


# -- every string field, one awkward value at a time ------------------------------------------

#: what each string a client sends is tried with: NUL and other control characters, a line
#: separator, lone surrogates (sent as JSON escapes or percent-encoded bytes: not UTF-8), an
#: emoji, blank, and longer than any column
AWKWARD = ["\x00", "a\x00b", "\x1f", "\x7f", "\u2028", "\ud800", "a\udfff", "😀", " ", "x" * 1000]


def _templates(live: Any) -> list[tuple[str, str, dict[str, Any], dict[str, Any], Any]]:
    """One valid request per operation: (method, path, path parameters, query, JSON body)."""
    accounts, subscriptions = _SEEDED["accounts"], _SEEDED["subscriptions"]
    cn, pending, us = accounts[0], accounts[1], accounts[3]
    fresh = live.client("operator").post(
        "/v1/accounts", json={"type": "organization", "name": "Fresh", "country": "US"}
    )
    assert fresh.status_code == 201, fresh.text
    decision = {
        "action": "purchase",
        "at": "2020-09-02T10:00:00+08:00",
        "subject": {
            "type": "organization",
            "id": "x",
            "country": "US",
            "ip": "8.8.8.8",
            "plan": "pro",
            "org_id": VALID_USCC,
            "phone": "+12025550100",
        },
        "resource": {"channel": "partner", "partner": "bizconf"},
    }
    return [
        (
            "POST",
            "/v1/accounts",
            {},
            {},
            {
                "type": "organization",
                "name": "Example",
                "country": "US",
                "org_id": "12345",
                "email": "a@example.com",
            },
        ),
        ("GET", "/v1/accounts", {}, {"country": "US", "status": "active"}, None),
        ("GET", "/v1/accounts/{account_id}", {"account_id": us}, {}, None),
        ("GET", "/v1/accounts/{account_id}/entitlements", {"account_id": cn}, {}, None),
        ("GET", "/v1/accounts/{account_id}/notices", {"account_id": cn}, {}, None),
        (
            "POST",
            "/v1/accounts/{account_id}/review",
            {"account_id": pending},
            {},
            {"approve": False, "note": "seen"},
        ),
        (
            "POST",
            "/v1/checkout",
            {},
            {},
            {
                "account": fresh.json()["account"]["id"],
                "plan": "pro",
                "channel": "direct",
                "term": "month",
                "starts_at": "2021-01-01T00:00:00Z",
            },
        ),
        ("GET", "/v1/subscriptions", {}, {"account": cn, "status": "active"}, None),
        (
            "GET",
            "/v1/subscriptions/{subscription_id}",
            {"subscription_id": subscriptions[0]},
            {},
            None,
        ),
        (
            "POST",
            "/v1/subscriptions/{subscription_id}/partner",
            {"subscription_id": subscriptions[0]},
            {},
            {"partner": "bizconf"},
        ),
        (
            "POST",
            "/v1/subscriptions/{subscription_id}/takeover",
            {"subscription_id": subscriptions[0]},
            {},
            None,
        ),
        ("POST", "/v1/renewals", {}, {}, {"at": "2020-09-02T10:00:00+08:00"}),
        ("GET", "/v1/transitions", {}, {"jurisdiction": "CN", "at": "2020-08-23"}, None),
        ("GET", "/v1/partners", {}, {"jurisdiction": "CN"}, None),
        ("GET", "/v1/partners/{partner_id}", {"partner_id": "bizconf"}, {}, None),
        ("PATCH", "/v1/partners/{partner_id}", {"partner_id": "bizconf"}, {}, {"contact": "c"}),
        ("POST", "/v1/tokens", {}, {}, {"role": "user", "name": "n", "account": us}),
        ("GET", "/v1/records", {}, {"action": "account.register", "subject": us}, None),
        ("POST", "/v1/decisions", {}, {}, decision),
        ("POST", "/v1/decisions:batch", {}, {}, {"requests": [decision]}),
    ]


def _leaves(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Where the strings are in ``value``: each as a path of keys and indexes."""
    if isinstance(value, str):
        yield at
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*at, index))


def _replace(value: Any, at: tuple[Any, ...], new: str) -> Any:
    if not at:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[at[0]] = _replace(value[at[0]], at[1:], new)
    return copy


def _encoded(text: str) -> str:
    """Percent-encoded UTF-8, lone surrogates too (as the bytes a client would send)."""
    return urllib.parse.quote(text.encode("utf-8", "surrogatepass"), safe="")


def _send(
    live: Any,
    method: str,
    path: str,
    params: dict[str, Any],
    query: dict[str, Any],
    body: Any,
    headers: dict[str, Any] | None = None,
) -> None:
    url = path
    for name, value in params.items():
        url = url.replace(f"{{{name}}}", _encoded(value))
    if query:
        url += "?" + "&".join(f"{_encoded(k)}={_encoded(str(v))}" for k, v in query.items())
    headers = {"authorization": f"Bearer {live.tokens['operator']}", **(headers or {})}
    content = None
    if body is not None:
        content = json.dumps(body).encode()  # ASCII: lone surrogates go as \\u escapes
        headers["content-type"] = "application/json"
    response = live.client().request(method, url, content=content, headers=headers)
    extra = {} if body is None else {"body": body, "media_type": "application/json"}
    case = schema[path][method].Case(path_parameters=params, query=query, **extra)
    try:
        case.validate_response(response, checks=CHECKS)
    except Exception as exc:
        raise AssertionError(f"{method} {url} {content!r}: {exc}") from exc


def test_awkward_strings_in_every_field(seeded: Any) -> None:
    for method, path, params, query, body in _templates(seeded):
        for name in params:
            for value in AWKWARD:
                _send(seeded, method, path, {**params, name: value}, query, body)
        for name in query:
            for value in AWKWARD:
                _send(seeded, method, path, params, {**query, name: value}, body)
        for at in list(_leaves(body)):
            for value in AWKWARD:
                _send(seeded, method, path, params, query, _replace(body, at, value))


def test_awkward_headers(seeded: Any) -> None:
    body = {"type": "individual", "name": "A", "country": "US"}
    for authorization in [b"Bearer \xff", b"Bearer", b"Basic YTpi", b"Bearer " + b"x" * 5000]:
        for path, params in [
            ("/v1/accounts", {}),
            ("/v1/accounts/{account_id}", {"account_id": "x"}),
        ]:
            method = "POST" if path == "/v1/accounts" else "GET"
            _send(
                seeded,
                method,
                path,
                params,
                {},
                body if method == "POST" else None,
                {"authorization": authorization},
            )
    for key in [b"\xff", b"\xc3\xa9", b"k" * 256, b"k\tk", b"k" * 255]:
        _send(seeded, "POST", "/v1/accounts", {}, {}, body, {"idempotency-key": key})


#: bodies no JSON parser should choke on: not UTF-8, nested past any recursion limit, truncated,
#: empty, a number beyond a float, and the non-standard NaN
UNREADABLE = [
    b"\xff\xfe{}",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a": ' * 100_000,
    b"{",
    b"",
    b"1e999999",
    b'{"name": NaN}',
]


def test_unreadable_bodies(seeded: Any) -> None:
    with_body = [
        (path, method.upper(), operation)
        for path, methods in schema.raw_schema["paths"].items()
        for method, operation in methods.items()
        if "requestBody" in operation
    ]
    assert len(with_body) >= 9
    for path, method, operation in with_body:
        params = {p["name"]: "x" for p in operation.get("parameters", []) if p["in"] == "path"}
        for content in UNREADABLE:
            for key in [None, f"unreadable-{next(_requests)}"]:
                headers = {"content-type": "application/json"}
                if key is not None:
                    headers["idempotency-key"] = key
                url = path
                for name, value in params.items():
                    url = url.replace(f"{{{name}}}", value)
                response = seeded.client("operator").request(
                    method, url, content=content, headers=headers
                )
                case = schema[path][method].Case(path_parameters=params)
                try:
                    case.validate_response(response, checks=CHECKS)
                except Exception as exc:
                    raise AssertionError(f"{method} {url} {content[:20]!r}: {exc}") from exc


def test_a_bundle_the_database_cannot_store_is_refused(live: Any) -> None:
    """``PUT /v1/policy``: strings reach the database through the bundle's YAML escapes too."""
    from meridian.policy.loader import default_bundle_path

    text = default_bundle_path().read_text(encoding="utf-8")
    before = live.client("operator").get("/v1/policy").json()
    for value in AWKWARD:
        scalar = json.dumps(value)  # a JSON string is a YAML double-quoted scalar
        for original, changed in [
            ('version: "2020.12.18"', f"version: {scalar}"),
            ("name: Bizconf Communications", f"name: {scalar}"),
            ("name: Bizconf Communications", f"name: B\n    contact: {scalar}"),
            ("name: Bizconf Communications", f"name: B\n    effective: {{from: {scalar}}}"),
        ]:
            yaml = text.replace(original, changed, 1)
            _send(live, "PUT", "/v1/policy", {}, {}, {"yaml": yaml})
    for window in ["{from: 0001-01-01}", "{until: 0001-01-01}", "{from: 9999-12-31}"]:
        yaml = text.replace("name: Bizconf Communications", f"name: B\n    effective: {window}", 1)
        _send(live, "PUT", "/v1/policy", {}, {}, {"yaml": yaml})
    # the bundle in force is one that was accepted, and the service still decides
    assert live.client("operator").get("/v1/policy").status_code == 200
    assert before["name"] == "meridian-default"
