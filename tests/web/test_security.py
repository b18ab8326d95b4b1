"""Production posture over HTTP and in the browser: headers on /v1, Secure cookies behind a TLS
proxy, and /docs and /redoc from vendored assets under a CSP, offline."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest


def _sign_in(live: Any, **headers: str) -> httpx.Response:
    with httpx.Client(base_url=live.url, follow_redirects=False, headers=headers) as c:
        r = c.post("/login", data={"token": live.tokens["operator"], "next": "/console"})
    assert r.status_code == 303, r.text
    return r


def _secure(response: httpx.Response) -> bool:
    cookie = response.headers["set-cookie"].lower()
    return "secure" in [part.strip() for part in cookie.split(";")]


@pytest.mark.parametrize(
    ("path", "who"),
    [("/v1/health", None), ("/v1/bundles/active", "operator"), ("/v1/nothing-here", None)],
    ids=["public", "authenticated", "not-found"],
)
def test_api_responses_are_never_cached_nor_sniffed(live: Any, path: str, who: str | None) -> None:
    r = live.client(who).get(path)
    assert r.headers["cache-control"] == "no-store", path
    assert r.headers["x-content-type-options"] == "nosniff", path


@pytest.mark.parametrize(
    ("path", "policy"),
    [
        ("/meet/mtg_any", "camera=(self), microphone=(self), geolocation=()"),
        ("/login", "camera=(), microphone=(), geolocation=()"),
        ("/static/js/media.js", "camera=(), microphone=(), geolocation=()"),
    ],
    ids=["meeting-page", "other-page", "static"],
)
def test_only_the_meeting_page_may_use_the_camera_and_microphone(
    live: Any, path: str, policy: str
) -> None:
    with httpx.Client(base_url=live.url, follow_redirects=False) as c:
        r = c.get(path)
    assert r.headers["permissions-policy"] == policy, path


def test_https_from_a_trusted_proxy_makes_the_session_cookie_secure(live: Any) -> None:
    # the web tests' server trusts 127.0.0.1 as a proxy
    assert _secure(_sign_in(live, **{"X-Forwarded-Proto": "https"}))
    assert not _secure(_sign_in(live))
    assert not _secure(_sign_in(live, **{"X-Forwarded-Proto": "http"}))


def test_forwarded_proto_from_an_untrusted_peer_is_ignored(live_factory: Any) -> None:
    live = live_factory(trusted_proxies=("10.0.0.0/8",))
    assert not _secure(_sign_in(live, **{"X-Forwarded-Proto": "https"}))


# -- the API's documentation pages, offline, in the browser ---------------------------------------


def _offline(context: Any, base: str) -> list[str]:
    """Refuse every request that leaves the server under test; returns what was refused."""
    refused: list[str] = []
    origin = urlsplit(base)

    def route(r: Any) -> None:
        url = urlsplit(r.request.url)
        if (url.scheme, url.netloc) in {(origin.scheme, origin.netloc)} or url.scheme in (
            "data",
            "blob",
        ):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    return refused


@pytest.mark.parametrize(
    ("path", "first", "second"),
    [
        # Swagger UI lists every operation by path; ReDoc writes out each description
        ("/docs", "/v1/decisions", "/v1/decisions:batch"),
        ("/redoc", "Decide one request", "Decide up to 1,000 requests"),
    ],
    ids=["swagger-ui", "redoc"],
)
def test_api_docs_render_offline_under_a_csp(
    live: Any, browser: Any, path: str, first: str, second: str
) -> None:
    context = browser.new_context(base_url=live.url)
    context.set_default_timeout(20_000)
    refused = _offline(context, live.url)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    try:
        response = page.goto(path)
        assert response.status == 200
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "'unsafe-eval'" not in csp
        # the operations are drawn (the summaries come from the OpenAPI document)
        page.get_by_text(first).first.wait_for()
        assert page.get_by_text(second).count() >= 1
    finally:
        context.close()
    assert refused == [], f"the page reached outside the server: {refused}"
    violations = [p for p in problems if "Content Security Policy" in p or "uncaught" in p]
    assert violations == [], violations
