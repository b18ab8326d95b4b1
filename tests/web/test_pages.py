"""Every page in every role's navigation opens, passes axe-core, and breaks no CSP rule.

Runs over the demo world (the 2020 case, as ``make run`` seeds it), so each page has something
to show. The per-flow tests check what the pages do; this one checks that nothing is left out.
"""

from __future__ import annotations

from typing import Any

import pytest

from meridian.web.render import nav_for

from .conftest import check_a11y


@pytest.fixture
def demo(demo_live: Any) -> Any:
    from meridian.storage.models import Account

    live = demo_live
    with live.runtime.db.read() as session:
        host = session.query(Account).filter(Account.name == "Riverside Clinic LLC").one().id
    live.token("us-host", role="user", account_id=host)
    return live


@pytest.mark.parametrize(
    ("who", "role"), [(None, None), ("operator", "operator"), ("bizconf", "partner"), ("us-host", "user")]
)
def test_every_page_in_the_navigation_opens_and_is_accessible(
    demo: Any, browse: Any, who: str | None, role: str | None
) -> None:
    page = browse(demo, who)
    serious: dict[str, list[str]] = {}
    for _section, label, path in nav_for(role):
        response = page.goto(path)
        assert response is not None
        assert response.status == 200, f"{label} ({path}) answered {response.status}"
        assert page.locator("h1").count() == 1, f"{path} has no single h1"
        found = [v["id"] for v in check_a11y(page) if v.get("impact") == "serious"]
        if found:
            serious[path] = found
    # the bar is no critical violation (check_a11y); none serious either, so hold it there
    assert not serious, f"serious accessibility violations: {serious}"
