"""Signing in and out, sessions, CSRF and the security headers, in the browser and over HTTP."""

from __future__ import annotations

import re
from typing import Any

import httpx

from .conftest import check_a11y, shot, sign_in


def test_front_page_and_sign_in_land_each_role_at_home(live: Any, browse: Any) -> None:
    page = browse(live)
    assert page.get_by_role("heading", name="Meridian").is_visible()
    check_a11y(page)
    page.goto("/login")
    check_a11y(page)
    shot(page, "sign-in")
    sign_in(page, live.tokens["operator"])
    assert page.url.endswith("/console")
    sign_in(page, live.tokens["bizconf"])
    assert page.url.endswith("/partner")


def test_a_wrong_token_is_refused_with_the_reason(live: Any, browse: Any) -> None:
    page = browse(live)
    sign_in(page, "mrd_not_a_token")
    assert "/login" in page.url
    assert page.get_by_role("alert").inner_text() == "invalid or revoked api token"


def test_a_page_needs_a_sign_in_and_comes_back_after_it(live: Any, browse: Any) -> None:
    page = browse(live, path="/console/log")
    assert "/login?next=/console/log" in page.url
    page.get_by_label("API token").fill(live.tokens["operator"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/console/log$"))


def test_a_partner_cannot_open_the_console(live: Any, browse: Any) -> None:
    page = browse(live, "bizconf")
    response = page.goto("/console")
    assert response.status == 403
    assert "needs `operator`" in page.get_by_role("alert").inner_text()


def test_sign_out_ends_the_session(live: Any, browse: Any) -> None:
    page = browse(live, "operator")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/$"))
    page.goto("/console")
    assert "/login" in page.url


def test_pages_carry_a_strict_csp_and_no_store() -> None:
    from meridian.web.security import content_security_policy

    csp = content_security_policy(["ws://127.0.0.1:9"])
    assert "script-src 'self'" in csp
    assert "unsafe" not in csp
    assert "connect-src 'self' ws://127.0.0.1:9" in csp


def test_headers_and_csrf_over_http(live: Any) -> None:
    with httpx.Client(base_url=live.url, follow_redirects=False) as c:
        r = c.get("/login")
        assert r.status_code == 200
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store"
        assert "content-security-policy" not in c.get("/v1/health").headers
        # sign in: the cookie is HttpOnly and SameSite=Strict
        r = c.post("/login", data={"token": live.tokens["operator"], "next": "/console/log"})
        assert r.status_code == 303
        assert r.headers["location"] == "/console/log"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        # a state-changing form without the session's csrf token is refused, and changes nothing
        r = c.post("/logout")
        assert r.status_code == 403
        assert "csrf token is missing or stale" in r.text
        assert c.get("/console").status_code == 200
        # another origin is refused whatever it carries
        r = c.post("/logout", headers={"origin": "https://evil.example"})
        assert r.status_code == 403
        assert "cross-origin" in r.text
    with httpx.Client(base_url=live.url, follow_redirects=False) as c:
        # an open redirect after sign-in is not followed
        r = c.post("/login", data={"token": live.tokens["operator"], "next": "//evil.example/x"})
        assert r.headers["location"] == "/console"


def test_an_altered_or_revoked_session_is_no_session(live: Any) -> None:
    with httpx.Client(base_url=live.url, follow_redirects=False) as c:
        c.post("/login", data={"token": live.tokens["operator"]})
        cookie = c.cookies["meridian_session"]
        c.cookies.set("meridian_session", cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"))
        assert c.get("/console").status_code == 303
    from meridian.identity.tokens import authenticate

    with live.runtime.db.read() as session:
        token_id = authenticate(session, live.tokens["operator2"]).token_id
    with httpx.Client(base_url=live.url, follow_redirects=False) as c:
        c.post("/login", data={"token": live.tokens["operator2"]})
        assert c.get("/console").status_code == 200
        assert live.client("operator").delete(f"/v1/tokens/{token_id}").status_code == 200
        # revoked through this process: the session ends at once
        assert c.get("/console").status_code == 303


def test_sign_out_ends_the_session_on_every_replica(live_factory: Any) -> None:
    # two replicas on one database, with one session key: a cookie works on both
    one = live_factory(trusted_proxies=("127.0.0.1/32",))
    two = live_factory(trusted_proxies=("127.0.0.1/32",))
    with httpx.Client(base_url=one.url, follow_redirects=False) as c:
        assert c.post("/login", data={"token": one.tokens["operator"]}).status_code == 303
        cookie = c.cookies["meridian_session"]
        assert c.get("/console").status_code == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/console").text)
        assert csrf is not None
        r = c.post("/logout", data={"csrf": csrf[1]})
        assert r.status_code == 303
    for server in (one, two):
        # the old cookie, replayed after sign-out: signed out, here and on the other replica
        with httpx.Client(
            base_url=server.url, follow_redirects=False, cookies={"meridian_session": cookie}
        ) as replay:
            r = replay.get("/console")
            assert r.status_code == 303, server.url
            assert r.headers["location"].startswith("/login")
    # the token itself still works, and a new sign-in is a new session
    with httpx.Client(base_url=two.url, follow_redirects=False) as c:
        assert c.post("/login", data={"token": one.tokens["operator"]}).status_code == 303
        assert c.get("/console").status_code == 200


def test_a_replayed_cookie_after_sign_out_in_the_browser_is_signed_out(
    live: Any, browse: Any
) -> None:
    page = browse(live, "operator")
    cookies = page.context.cookies()
    assert [c["name"] for c in cookies] == ["meridian_session"]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/$"))
    page.context.add_cookies(cookies)  # the stolen or kept cookie, put back
    page.goto("/console")
    assert "/login" in page.url


def test_the_login_page_names_a_command_that_exists(live: Any) -> None:
    from typer.testing import CliRunner

    from meridian.cli.app import app

    with httpx.Client(base_url=live.url) as c:
        text = c.get("/login").text
    assert "<code>meridian admin create-token</code>" in text
    assert "meridian create-token" not in text
    result = CliRunner().invoke(app, ["admin", "create-token", "--help"])
    assert result.exit_code == 0, result.output
