"""Input that must be refused before it reaches storage, on both databases: invisible characters
in names (bidi controls, zero-width characters), and path and WebSocket parameters a database
would choke on (a NUL byte is a 500 on PostgreSQL if it gets that far)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.storage

#: right-to-left override (makes "gpj.exe" read as "exe.jpg"), isolate, mark; zero-width space,
#: joiner and non-joiner, word joiner, byte-order mark
INVISIBLE = ["\u202e", "\u2067", "\u200f", "\u200b", "\u200d", "\u200c", "\u2060", "\ufeff"]
IDS = ["rlo", "rli", "rlm", "zwsp", "zwj", "zwnj", "wj", "bom"]


def _refused(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert field in message, message
    assert "\n" not in message


@pytest.mark.parametrize("ch", INVISIBLE, ids=IDS)
def test_names_refuse_bidi_controls_and_zero_width_characters(live: Any, ch: str) -> None:
    name = f"Acme{ch}Corp"
    ops = live.client("operator")
    _refused(
        live.client().post("/v1/accounts", json={"type": "individual", "name": name, "country": "US"}),
        "name",
    )
    _refused(ops.post("/v1/tokens", json={"role": "operator", "name": name}), "name")
    _refused(
        live.client("bizconf").post(
            "/v1/accounts", json={"type": "organization", "name": name, "country": "CN"}
        ),
        "name",
    )
    _refused(ops.post("/v1/meetings", json={"topic": name}), "topic")


def test_ordinary_names_in_any_script_are_accepted(live: Any) -> None:
    for name in ("Zoë Ångström", "北京会议有限公司", "محمد", "O'Brien & Sons"):
        r = live.client().post("/v1/accounts", json={"type": "individual", "name": name, "country": "US"})
        assert r.status_code == 201, (name, r.text)


def _join(live: Any, path: str, name: str = "Ana") -> tuple[dict[str, Any], int | None]:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async def talk() -> tuple[dict[str, Any], int | None]:
        url = live.url.replace("http://", "ws://") + path
        async with connect(url) as ws:
            # the service may refuse a bad path before the join message: its refusal still waits
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps({"type": "join", "name": name, "public_key": "A" * 43}))
            answer = json.loads(await ws.recv())
            await ws.wait_closed()
            return answer, ws.close_code

    return asyncio.run(talk())


@pytest.mark.parametrize(
    "meeting_id",
    ["mtg%00x", "%E2%80%AEmtg", "x" * 101, "mtg%20x"],
    ids=["nul", "bidi", "long", "space"],
)
def test_a_websocket_meeting_id_is_checked_before_the_database(live: Any, meeting_id: str) -> None:
    answer, code = _join(live, f"/v1/meetings/{meeting_id}/signal")
    assert code == 4400
    assert answer["type"] == "refused"
    assert answer["message"].startswith("invalid meeting id `"), answer
    assert "\n" not in answer["message"]


def test_a_participant_name_with_a_bidi_override_is_refused(live: Any) -> None:
    answer, code = _join(live, "/v1/meetings/mtg_nope/signal", name="Ana\u202eevil")
    assert code == 4400
    assert "`name`" in answer["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/console/accounts/acc%00x",
        "/console/partners/biz%00conf",
        "/partner/customers/acc%00x",
        "/account/checkout/sub%00x",
        "/console/accounts?status=a%00b",
        "/console/reviews?account=a%00b",
        "/console/legal?state=a%00b",
    ],
)
def test_a_page_path_with_a_nul_is_a_clear_4xx(live: Any, path: str) -> None:
    who = "bizconf" if path.startswith("/partner/") else "operator"
    with httpx.Client(base_url=live.url, follow_redirects=False) as c:
        r = c.post("/login", data={"token": live.tokens[who], "next": "/"})
        assert r.status_code == 303
        r = c.get(path)
    assert 400 <= r.status_code < 500, (path, r.status_code)
    assert "Traceback" not in r.text
