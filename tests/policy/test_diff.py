"""The exact semantic diff of two bundles (meridian.policy.diff)."""

from __future__ import annotations

import json
from functools import cache

from meridian.policy import LoadedBundle, load_bundle, load_bundle_text
from meridian.policy.diff import PolicyDiff, diff_bundles
from meridian.policy.loader import default_bundle_path

MOVED = ("effective: {from: 2020-08-23}", "effective: {from: 2020-08-30}")
NEW_PARTNER = (
    "  systec-umeet:\n    name: Systec Umeet\n    jurisdictions: [CN]\n",
    "  systec-umeet:\n    name: Systec Umeet\n    jurisdictions: [CN]\n"
    "  newco:\n    name: Newco\n    jurisdictions: [CN]\n    effective: {from: 2020-09-01}\n",
)


def changed(*edits: tuple[str, str]) -> LoadedBundle:
    text = default_bundle_path().read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    return load_bundle_text(text, "changed.yaml")


@cache
def moved_diff() -> PolicyDiff:
    return diff_bundles(load_bundle(), changed(MOVED))


def test_a_bundle_against_itself_has_no_difference() -> None:
    diff = diff_bundles(load_bundle(), load_bundle())
    assert diff.same
    assert diff.classes == ()
    assert diff.examined > 0
    assert diff.differing == 0


def test_moving_the_cn_cutover_by_a_week_is_exactly_a_week_of_direct_sales_in_cn() -> None:
    diff = moved_diff()
    assert not diff.same
    assert {c.action for c in diff.classes} == {"purchase", "renew"}
    for c in diff.classes:
        assert "CN" in c.judged_under[0]
        assert dict(c.facts)["channel"] == ("direct",)
        assert c.change == "deny->allow"
        assert c.old.rules == ("cn-direct-sales-end",)
        assert c.window()["from_utc"] == "2020-08-22T16:00:00Z"
        assert c.window()["until_utc"] == "2020-08-29T16:00:00Z"
        assert c.window()["from_local"] == "2020-08-23T00:00:00+08:00"
        assert c.window()["until_local"] == "2020-08-30T00:00:00+08:00"


def test_the_digest_is_stable_and_covers_the_content() -> None:
    one, two = moved_diff(), diff_bundles(load_bundle(), changed(MOVED))
    assert one.digest == two.digest
    assert one.digest.startswith("sha256:")
    other = diff_bundles(load_bundle(), changed(MOVED, NEW_PARTNER))
    assert other.digest != one.digest
    assert json.loads(json.dumps(one.to_dict()))["digest"] == one.digest
