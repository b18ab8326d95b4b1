"""Browser tests: Debian's Chromium driven by Playwright against the app on loopback.

The browser is ``/usr/bin/chromium`` (``.ci/run`` installs Debian's package; Playwright never
downloads one), headless, with a new profile. Pages run on SQLite only: what they show comes from
the same service functions the API tests already run on both backends.

Helpers:

- ``browse(live, who=None, forwarded_for=None)``: a new page, signed in as ``who`` (a key of
  ``live.tokens``) through the real sign-in form; ``forwarded_for`` sets ``X-Forwarded-For`` on
  every request (the servers trust loopback as a proxy), which is how a test puts a browser in a
  country.
- ``shot(page, name)``: a full-page screenshot in ``var/screenshots/`` (docs/screenshots/ come from
  there).
- ``check_a11y(page)``: axe-core, run in the page; fails on any critical violation.

Every page opened through ``browse`` fails its test if the browser reported a Content-Security-
Policy violation or a script error.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("MERIDIAN_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # a camera and a microphone for the meeting page: Chromium's own test pattern and tone, with
    # no permission prompt, and audio that may start without a gesture the test cannot make
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """Pages run on SQLite only (see the module's docstring), copied from the migrated template."""
    from tests.conftest import sqlite_copy

    return sqlite_copy(sqlite_template, tmp_path)


@pytest.fixture
def live(live_factory: Callable[..., Any]) -> Any:
    """The app on loopback, trusting loopback as a proxy: ``browse(forwarded_for=…)`` places a page."""
    return live_factory(trusted_proxies=("127.0.0.1/32",))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one module's tests. Not for the session: while Playwright's sync API runs,
    its event loop counts as running on this thread, so a later module's ``asyncio.run`` (the
    meetings' tests) would fail with "cannot be called from a running event loop"."""
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.fail(f"no browser at `{CHROMIUM}`: install Debian's chromium (`.ci/run` does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=_FLAGS)
        yield b
        b.close()


class PageProblems:
    """Console errors and uncaught exceptions a page reported."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Any) -> None:
        page.on(
            "console",
            lambda m: self.errors.append(m.text) if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def csp(self) -> list[str]:
        return [e for e in self.errors if "Content Security Policy" in e or "uncaught" in e]


@pytest.fixture
def browse(browser: Any) -> Iterator[Callable[..., Any]]:
    contexts: list[tuple[Any, PageProblems]] = []

    def open_page(
        live: Any, who: str | None = None, *, forwarded_for: str | None = None, path: str = "/"
    ) -> Any:
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        context = browser.new_context(
            base_url=live.url, extra_http_headers=headers, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(15_000)
        problems = PageProblems()
        contexts.append((context, problems))
        page = context.new_page()
        problems.watch(page)
        page.problems = problems  # type: ignore[attr-defined]
        if who is not None:
            sign_in(page, live.tokens[who])
        if path != "/" or who is None:
            page.goto(path)
        return page

    yield open_page
    failures = []
    for context, problems in contexts:
        context.close()
        failures.extend(problems.csp())
    assert not failures, f"the browser reported: {failures}"


def sign_in(page: Any, token: str) -> None:
    """Sign in through the real form, as a person would."""
    page.goto("/login")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot, ``var/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def check_a11y(page: Any) -> list[dict[str, Any]]:
    """Run axe-core in the page; fail on a critical violation, return the others."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # evaluated through the DevTools protocol: the page's CSP (no inline script) still holds
        page.evaluate(AXE.read_text("utf-8"))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    violations: list[dict[str, Any]] = result["violations"]
    critical = [
        f"{v['id']}: {v['help']} ({', '.join(n['target'][0] for n in v['nodes'][:3])})"
        for v in violations
        if v.get("impact") == "critical"
    ]
    assert not critical, f"critical accessibility violations on {page.url}: {critical}"
    return violations


def seed_before_serving(database_url: str, clock: Any, directory: Path) -> None:
    """Seed the demo world into the database before a service is started over it, as
    ``meridian serve --demo`` does: a service already running would end the demo's June 2020
    meetings (long past their plan's minutes by its clock) while the seed still works on them."""
    from meridian.demo import seed_demo
    from meridian.runtime import Runtime
    from meridian.settings import Settings

    settings = Settings(database_url=database_url, renew_interval=0, log_key=directory / "seed.key")
    seeding = Runtime(settings, clock=clock)
    seeding.start()
    try:
        seed_demo(seeding)
    finally:
        seeding.close()


@pytest.fixture
def demo_live(
    live_factory: Callable[..., Any], database_url: str, clock: Any, tmp_path: Path
) -> Any:
    """:func:`live` over the demo world (seeded first, see :func:`seed_before_serving`)."""
    seed_before_serving(database_url, clock, tmp_path)
    return live_factory(trusted_proxies=("127.0.0.1/32",))
