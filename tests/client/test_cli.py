"""``meridian client join`` and ``meridian node`` from the outside: output and exit codes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from typer.testing import CliRunner

from meridian.cli.app import app
from meridian.client import Participant

runner = CliRunner()
WAIT = 30  # seconds: a safety net against hanging, never an assertion


def join_args(control, meeting: str, *args: str) -> list[str]:
    return ["client", "join", meeting, "--control", control.url, *args]


def listener(control, meeting: str, *args: str) -> subprocess.Popen[str]:
    """A ``client join`` in its own process, started once it has joined."""
    cmd = [sys.executable, "-m", "meridian", *join_args(control, meeting, *args)]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())
    assert first["event"] == "joined", first
    return proc


def test_say_and_expect_between_two_clients(control, meeting):
    bob = listener(control, meeting, "--name", "bob", "--expect", "2", "--json")
    alice = runner.invoke(
        app, join_args(control, meeting, "--name", "alice", "--say", "hi bob", "--say", "bye")
    )
    out, err = bob.communicate(timeout=WAIT)
    assert alice.exit_code == 0, alice.stderr
    assert alice.stderr.startswith(f"joined {meeting} as p_alice_")
    assert "via relay US (key epoch 0)" in alice.stderr
    assert alice.stderr.splitlines()[-1].startswith("left: 0 chat lines")
    assert bob.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    chat = [(e["text"], e["epoch"]) for e in events if e["event"] == "chat"]
    assert chat == [("hi bob", 0), ("bye", 0)]
    assert events[-1] == {
        "event": "left",
        "received_chat": 2,
        "received_media": 0,
        "media": {
            "frames": {},
            "bytes": 0,
            "synthetic": 0,
            "keyframes": 0,
            "malformed": 0,
            "latency_ms_p50": None,
        },
        "undecryptable": 0,
        "dropped": {"bad_signature": 0, "unknown_sender": 0, "old_epoch": 0},
    }


def test_media_frames_are_counted_by_the_receiver(control, meeting):
    bob = listener(control, meeting, "--name", "bob", "--expect", "1", "--json")
    alice = runner.invoke(
        app,
        join_args(
            control, meeting, "--name", "alice", "--media", "5", "--size", "2000", "--say", "done"
        ),
    )
    out, err = bob.communicate(timeout=WAIT)
    assert alice.exit_code == 0, alice.stderr
    assert bob.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["bytes"] for e in events if e["event"] == "media"] == [2000] * 5
    assert events[-1]["received_media"] == 5


def test_a_synthetic_stream_is_received_and_counted_by_type_and_quality(control, meeting):
    # bob takes the lower video quality: the relay forwards him that one only
    bob = listener(control, meeting, "--name", "bob", "--layer", "low", "--stay", "4", "--json")
    alice = runner.invoke(
        app, join_args(control, meeting, "--name", "alice", "--stream", "1.5", "--json")
    )
    out, err = bob.communicate(timeout=WAIT)
    assert alice.exit_code == 0, alice.stderr
    assert bob.returncode == 0, err
    sent = [json.loads(line) for line in alice.stdout.splitlines()]
    stream = next(e for e in sent if e["event"] == "sent_stream")
    assert stream["video"] >= 40  # 30 fps for 1.5 s, on a loaded machine
    got = json.loads(out.splitlines()[-1])["media"]
    # every audio chunk, and one quality of every video frame
    assert got["frames"] == {"audio": stream["audio"], "video": stream["video"]}
    assert got["synthetic"] == stream["audio"] + stream["video"]
    assert got["keyframes"] >= 1
    assert got["malformed"] == 0
    assert got["latency_ms_p50"] is not None
    # the low quality's chunks (1200 bytes of pattern each, keyframes three times that)
    assert got["bytes"] < stream["bytes"] / 2


def test_a_bad_layer_is_refused_in_one_line(control, meeting):
    result = runner.invoke(app, join_args(control, meeting, "--layer", "ultra", "--stay", "0"))
    assert result.exit_code != 0
    assert result.stderr.strip().splitlines()[-1].endswith("--layer `ultra` is not `high` or `low`")


def test_notices_are_shown_before_anything_else_is_done(control, meeting):
    control.notices = ["recording is on"]
    result = runner.invoke(app, join_args(control, meeting, "--name", "alice", "--stay", "0"))
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "notice: recording is on"
    assert lines[1].startswith(f"joined {meeting} as p_alice_")


def test_a_refusal_prints_the_reason_and_exits_3(control, meeting):
    result = runner.invoke(app, join_args(control, meeting, "--name", "mallory", "--say", "hi"))
    assert result.exit_code == 3
    assert result.stderr == "error: mallory may not join this meeting\n"


def test_an_unreachable_control_plane_exits_78(meeting):
    result = runner.invoke(
        app, ["client", "join", meeting, "--control", "http://127.0.0.1:9", "--say", "x"]
    )
    assert result.exit_code == 78
    assert result.stderr.startswith("error: cannot reach the control plane at `ws://127.0.0.1:9/")


def test_interactive_sends_each_line_and_leaves_at_end_of_input(control, meeting):
    async def scenario():
        bob = await Participant.join(control.url, meeting, name="bob")
        cmd = [sys.executable, "-m", "meridian", *join_args(control, meeting, "--name", "alice")]
        alice = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert alice.stdin is not None
        assert alice.stdout is not None
        assert alice.stderr is not None
        joined = await asyncio.wait_for(alice.stderr.readline(), WAIT)
        assert joined.startswith(b"joined ")
        alice.stdin.write(b"first line\n\nsecond line\n")
        await alice.stdin.drain()
        heard = [(await bob.receive(WAIT)).text for _ in range(2)]
        await bob.send_chat("hello alice")
        printed = await asyncio.wait_for(alice.stdout.readline(), WAIT)
        alice.stdin.close()
        code = await asyncio.wait_for(alice.wait(), WAIT)
        await bob.leave()
        return heard, printed.decode(), code

    heard, printed, code = asyncio.run(scenario())
    assert heard == ["first line", "second line"]  # the empty line is not sent
    # named as the roster the control plane signed names bob
    assert printed == "[bob] hello alice\n"
    assert code == 0


def test_node_refuses_a_bad_configuration_with_exit_78(tmp_path):
    bad_key = runner.invoke(
        app, ["node", "--region", "US", "--control-key", "!!", "--store", str(tmp_path)]
    )
    assert bad_key.exit_code == 78
    assert bad_key.stderr.startswith("error: control-plane public key `!!` is not")
    region = runner.invoke(app, ["node", "--region", "XX", "--control-key", "x"])
    assert region.exit_code == 78
    assert region.stderr.startswith("error: unknown region `XX`")
    peer = runner.invoke(app, ["node", "--region", "US", "--control-key", "x", "--peer", "DE"])
    assert peer.exit_code == 2
    assert peer.stderr.startswith("error: peer `DE` is not REGION=URL")


def test_a_pinned_control_key_refuses_any_other_signer(control, meeting):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from meridian.keys.grants import public_key_b64

    other = public_key_b64(Ed25519PrivateKey.generate().public_key())
    refused = runner.invoke(
        app, join_args(control, meeting, "--name", "alice", "--control-key", other, "--stay", "0")
    )
    assert refused.exit_code == 1
    assert refused.stderr == (
        "error: the control plane's roster key is not the pinned one: refusing its rosters\n"
    )
    bad = runner.invoke(app, join_args(control, meeting, "--control-key", "!!", "--stay", "0"))
    assert bad.exit_code == 2
    assert bad.stderr == "error: --control-key `!!` is not unpadded base64url\n"
    right = public_key_b64(control.signer.public_key)
    joined = runner.invoke(
        app, join_args(control, meeting, "--name", "alice", "--control-key", right, "--stay", "0")
    )
    assert joined.exit_code == 0, joined.stderr
    assert joined.stderr.startswith(f"joined {meeting} as p_alice_")


def test_a_join_link_gives_the_control_plane_and_the_invite(control, meeting):
    link = f"{control.url}/meet/{meeting}#k=s3cret-Invite_1"
    result = runner.invoke(app, ["client", "join", link, "--name", "alice", "--stay", "0"])
    assert result.exit_code == 0, result.stderr
    assert control.joins[-1]["meeting"] == meeting
    assert control.joins[-1]["invite"] == "s3cret-Invite_1"
    # --invite with the id does the same; and without either, no invite is sent
    result = runner.invoke(app, [*join_args(control, meeting, "--invite", "other"), "--stay", "0"])
    assert result.exit_code == 0, result.stderr
    assert control.joins[-1]["invite"] == "other"
    runner.invoke(app, [*join_args(control, meeting), "--stay", "0"])
    assert "invite" not in control.joins[-1]


def test_a_link_that_is_not_a_join_link_is_refused_in_one_line():
    result = runner.invoke(app, ["client", "join", "http://127.0.0.1:9/meetings/x", "--say", "x"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: `http://127.0.0.1:9/meetings/x` is not a join link: "
        "expected http(s)://host/meet/<meeting>#k=<invite>\n"
    )
