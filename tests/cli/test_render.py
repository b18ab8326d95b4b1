"""CLI tables at 80 columns: ids, instants and rule names are never cut; piped output is plain."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from meridian import default_engine
from meridian.cli import render
from meridian.policy.timeline import timeline as bundle_timeline

BOX = set("│┃║─━═┌┐└┘┏┓┗┛╭╮╰╯├┤┬┴┼╇╈╋┡┩")
ACCOUNT = "acct_3f9c0a1b7e2d4c65"
MEETING = "mtg_9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
SUBSCRIPTION = "sub_0a1b2c3d4e5f6a7b"
RULE = "cn-2020-foreign-online-purchase-ban"
AT = "2020-12-12T00:00:00+08:00"


def _report() -> dict[str, Any]:
    item = {
        "account": ACCOUNT,
        "account_name": "Shenzhen Example Technology Company Limited",
        "subscription": SUBSCRIPTION,
        "plan": "business",
        "channel": "online",
        "paid_until": "2021-03-01T00:00:00+00:00",
        "rules": [RULE],
        "applied": False,
    }
    return {
        "jurisdiction": "CN",
        "at": AT,
        "bundle": {"name": "meridian", "version": "2020.12"},
        "items": [
            {**item, "kind": "subscription_transfer"},
            {**item, "kind": "hosting_lost", "account": MEETING},
        ],
        "counts": {"subscription_transfer": 1, "open_checkout": 0, "hosting_lost": 1},
        "accounts_examined": 2,
        "applied": False,
    }


def _terminal(width: int = 80) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, force_terminal=True, color_system=None), out


def _piped(width: int) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, force_terminal=False), out


def test_a_transition_at_80_columns_keeps_ids_instants_and_rules_whole() -> None:
    console, out = _terminal()
    render.transition(console, _report())
    text = out.getvalue()
    for whole in (ACCOUNT, MEETING, SUBSCRIPTION, RULE, AT, "2021-03-01"):
        assert whole in text, f"`{whole}` was cut:\n{text}"
    assert "…" not in text


def test_a_timeline_at_80_columns_keeps_instants_and_rules_whole() -> None:
    engine = default_engine()
    console, out = _terminal()
    render.timeline(console, engine.bundle, "CN")
    text = out.getvalue()
    changes = bundle_timeline(engine.bundle, "CN")
    assert changes
    for c in changes:
        assert f"{c.utc:%Y-%m-%d %H:%M}Z" in text, text
        assert c.subject in text, f"`{c.subject}` was cut:\n{text}"
    assert "…" not in text


@pytest.mark.parametrize("width", [20, 40, 80, 200], ids=lambda w: f"{w}-columns")
def test_piped_output_is_plain_text_never_cut(width: int) -> None:
    console, out = _piped(width)
    render.transition(console, _report())
    engine = default_engine()
    render.timeline(console, engine.bundle, "CN")
    text = out.getvalue()
    assert not BOX & set(text), f"box characters in piped output:\n{text}"
    for whole in (ACCOUNT, MEETING, SUBSCRIPTION, RULE, AT):
        assert whole in text, f"`{whole}` was cut at {width} columns:\n{text}"
    for c in bundle_timeline(engine.bundle, "CN"):
        assert c.subject in text
    assert "…" not in text
