"""``meridian receipt verify``: a receipt that holds verifies and says where the meeting went; every
tamper — a changed region, a dropped participant, an altered node counter, a wrong proof, a wrong
signature — fails with one line naming what is wrong, exit 1.

The receipts are made without a service (bench/_receipts.py writes the same entries, proofs and
signatures); tests/meetings/test_receipts.py checks one the service made.
"""

from __future__ import annotations

import base64
import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from meridian.audit.cosignature import Cosigner
from meridian.cli.app import app
from meridian.keys.statements import node_public_key

# bench/ is a directory of scripts, not a package: its modules are imported from its path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _receipts import World, make_receipt

Receipt = dict[str, Any]


@pytest.fixture(scope="module")
def world() -> World:
    return make_receipt(5)


def verify(tmp_path: Path, world: World, receipt: Receipt, *extra: str) -> tuple[int, str, str]:
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt), encoding="utf-8")
    keys = tmp_path / "node-keys.json"
    keys.write_text(json.dumps(world.node_keys), encoding="utf-8")
    args = ["receipt", "verify", str(path), "--key", world.log_key, "--node-keys", str(keys)]
    result = CliRunner().invoke(app, [*args, *extra])
    return result.exit_code, result.stdout, result.stderr


def test_a_receipt_that_holds_says_where_the_meeting_went(tmp_path: Path, world: World) -> None:
    code, out, err = verify(tmp_path, world, world.receipt)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"receipt of meeting mtg_receipt: 5 participants, 11 log entries, in the log of "
        f"{world.tree.size} entries",
        "verified: carried only in HK, US; keys only from US",
    ]


def _join(receipt: Receipt, pid: str) -> dict[str, Any]:
    for item in receipt["entries"]:
        entry = json.loads(item["entry"])
        if entry["action"] == "meeting.join" and entry["details"]["participant"] == pid:
            return item
    raise AssertionError(pid)


def _summary_person(receipt: Receipt, pid: str) -> dict[str, Any]:
    return next(p for p in receipt["summary"]["participants"] if p["participant"] == pid)


def changed_region_in_summary(r: Receipt) -> None:
    _summary_person(r, "p_0001")["region"] = "US"


def changed_region_in_entry(r: Receipt) -> None:
    item = _join(r, "p_0001")
    item["entry"] = item["entry"].replace('"dc":"HK"', '"dc":"US"')


def dropped_participant(r: Receipt) -> None:
    r["summary"]["participants"] = [
        p for p in r["summary"]["participants"] if p["participant"] != "p_0001"
    ]


def dropped_participant_and_entry(r: Receipt) -> None:
    dropped_participant(r)
    r["entries"].remove(_join(r, "p_0001"))


def altered_counter_in_summary(r: Receipt) -> None:
    r["summary"]["nodes"]["HK"]["counters"]["bytes_in"] += 1


def altered_counter_in_seal(r: Receipt) -> None:
    seal = r["entries"][-1]
    seal["entry"] = seal["entry"].replace('\\"frames_in\\":20', '\\"frames_in\\":2')


def wrong_proof(r: Receipt) -> None:
    item = _join(r, "p_0002")
    first = bytearray(base64.b64decode(item["proof"][0]))
    first[0] ^= 1
    item["proof"][0] = base64.b64encode(bytes(first)).decode()


def wrong_checkpoint_signature(r: Receipt) -> None:
    note = r["log"]["checkpoint"]
    body, _, line = note.rstrip("\n").rpartition("\n")
    name, _, sig = line.removeprefix("— ").partition(" ")
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 1
    r["log"]["checkpoint"] = f"{body}\n— {name} {base64.b64encode(bytes(raw)).decode()}\n"


def carried_in_claimed_smaller(r: Receipt) -> None:
    r["summary"]["carried_in"] = ["US"]


TAMPERS: list[tuple[Callable[[Receipt], None], str]] = [
    (
        changed_region_in_summary,
        "participant `p_0001`: the receipt says region `US`, the log says `HK`",
    ),
    (changed_region_in_entry, "is not in the signed log: inclusion proof for leaf"),
    (dropped_participant, "participant `p_0001` is in the log's entries but not in the receipt"),
    (dropped_participant_and_entry, ", listed by the seal, is missing from the receipt"),
    (
        altered_counter_in_summary,
        "node `HK`: the receipt says bytes_in `20001`, its signed statement says `20000`",
    ),
    (altered_counter_in_seal, "is not in the signed log: inclusion proof for leaf"),
    (wrong_proof, "is not in the signed log: inclusion proof for leaf"),
    (
        wrong_checkpoint_signature,
        "the receipt's checkpoint does not verify with the log key: bad signature",
    ),
    (carried_in_claimed_smaller, 'the receipt says carried_in `["US"]`, its entries say'),
]


@pytest.mark.parametrize(("tamper", "says"), TAMPERS, ids=[t.__name__ for t, _ in TAMPERS])
def test_a_tampered_receipt_fails_with_one_line_naming_what_is_wrong(
    tmp_path: Path, world: World, tamper: Callable[[Receipt], None], says: str
) -> None:
    receipt = copy.deepcopy(world.receipt)
    tamper(receipt)
    code, out, err = verify(tmp_path, world, receipt)
    assert code == 1
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    assert says in err


def test_a_statement_the_node_did_not_sign_fails(tmp_path: Path) -> None:
    # the control plane records an HK statement of its own making: in the log, but not HK's
    forged = make_receipt(3, forge="HK")
    code, _, err = verify(tmp_path, forged, forged.receipt)
    assert code == 1
    assert err == (
        "error: node `HK`'s statement: its signature does not verify with the node's key\n"
    )


def test_the_wrong_node_key_or_a_missing_one_fails(tmp_path: Path, world: World) -> None:
    other = copy.copy(world)
    other.node_keys = {**world.node_keys, "US": node_public_key(Ed25519PrivateKey.generate())}
    code, _, err = verify(tmp_path, other, world.receipt)
    assert (code, err) == (
        1,
        "error: node `US`'s statement: its signature does not verify with the node's key\n",
    )
    other.node_keys = {r: k for r, k in world.node_keys.items() if r != "DE"}
    code, _, err = verify(tmp_path, other, world.receipt)
    assert code == 1
    assert err.startswith("error: no trusted key for node `DE`: give it as `--node-key DE=KEY`")


def test_the_wrong_log_key_fails(tmp_path: Path, world: World) -> None:
    other = copy.copy(world)
    other.log_key = make_receipt(1, filler=0).log_key
    code, _, err = verify(tmp_path, other, world.receipt)
    assert code == 1
    assert err.startswith("error: the receipt's checkpoint does not verify with the log key: ")


def test_witnesses_are_counted_against_the_quorum(tmp_path: Path, world: World) -> None:
    w1 = Cosigner("witness.example/w1", Ed25519PrivateKey.generate())
    w2 = Cosigner("witness.example/w2", Ed25519PrivateKey.generate())
    note = world.receipt["log"]["checkpoint"]
    body = note[: note.rfind("\n\n") + 1].encode()
    receipt = copy.deepcopy(world.receipt)
    receipt["log"]["checkpoint"] = note + w1.line(body, 1_790_000_000)
    witnesses = ["--witness", w1.public.vkey, "--witness", w2.public.vkey]
    code, out, err = verify(tmp_path, world, receipt, *witnesses, "--quorum", "1")
    assert (code, err) == (0, "")
    assert ", cosigned by 1 of 2 witnesses" in out.splitlines()[0]
    code, out, err = verify(tmp_path, world, receipt, *witnesses, "--quorum", "2")
    assert code == 1
    assert err == (
        "error: cosignature quorum not met: 1 of 2 required: `witness.example/w2` has not "
        "cosigned it\n"
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--node-key", "US"], "error: node key `US` is not REGION=KEY"),
        (["--quorum", "1"], "error: `--quorum` needs the witnesses' keys"),
    ],
)
def test_bad_options_are_one_line(tmp_path: Path, world: World, args: list[str], says: str) -> None:
    code, _, err = verify(tmp_path, world, world.receipt, *args)
    assert code == 2
    assert err.startswith(says)


def test_not_a_receipt(tmp_path: Path, world: World) -> None:
    code, _, err = verify(tmp_path, world, {"format": "something else"})
    assert (code, err) == (1, "error: not a receipt: expected `format` `meridian-receipt/1`\n")


def test_a_region_left_out_of_the_seal_fails(tmp_path: Path) -> None:
    # a seal that leaves out the node participants were placed in cannot say where they went
    partial = make_receipt(2, regions=("DE", "US"))
    code, _, err = verify(tmp_path, partial, partial.receipt)
    assert code == 1
    assert err == (
        "error: participant `p_0001` was placed in `HK`, whose node has no statement in the seal\n"
    )


def _write_and_verify(tmp_path: Path, world: World, raw: bytes) -> tuple[int, str, str]:
    path = tmp_path / "hostile.json"
    path.write_bytes(raw)
    keys = tmp_path / "node-keys.json"
    keys.write_text(json.dumps(world.node_keys), encoding="utf-8")
    args = ["receipt", "verify", str(path), "--key", world.log_key, "--node-keys", str(keys)]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "raw",
    [b"[" * 200_000, b'{"a":' * 200_000, b"\xff\xfe not text", b"", b"null", b"12"],
    ids=["nested-lists", "nested-objects", "not-utf8", "empty", "null", "number"],
)
def test_a_hostile_file_is_one_line_never_a_traceback(
    tmp_path: Path, world: World, raw: bytes
) -> None:
    code, out, err = _write_and_verify(tmp_path, world, raw)
    assert code == 1, (out, err)
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: "), err


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("summary", "participants"), 5),
        (("summary", "participants"), {"p": 1}),
        (("summary", "nodes"), ["US"]),
        (("summary", "nodes", "US"), {"counters": ["x"]}),
        (("summary", "nodes", "US"), {"counters": 7}),
    ],
)
def test_a_summary_of_the_wrong_types_is_one_line(
    tmp_path: Path, world: World, where: tuple[str, ...], value: Any
) -> None:
    receipt = copy.deepcopy(world.receipt)
    target = receipt
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    code, out, err = verify(tmp_path, world, receipt)
    assert code == 1, (out, err)
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: "), err


def test_a_hostile_node_keys_file_is_one_line(tmp_path: Path, world: World) -> None:
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(world.receipt), encoding="utf-8")
    keys = tmp_path / "node-keys.json"
    keys.write_bytes(b"[" * 200_000)
    args = ["receipt", "verify", str(receipt), "--key", world.log_key, "--node-keys", str(keys)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.exception
    assert result.stderr == f"error: node keys `{keys}` is not JSON\n"
