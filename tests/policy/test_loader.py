"""Loading bundles: the built-in one, the JSON Schema, every sample pair, and the digest.

``tests/bundles/`` holds pairs ``<name>_good.yaml`` / ``<name>_bad.yaml`` that differ in the
offending line only. Each bad file starts with a header saying where the loader must point and
what it must say, and marks the offending line with ``# <- here``::

    # expect: line 58: unknown jurisdiction `XX`: expected an ISO 3166-1 alpha-2 code
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml

import meridian
from meridian import BundleError, Engine, NotFoundError
from meridian.policy import bundle_json_schema, default_bundle_path, load_bundle, load_bundle_text
from meridian.policy.loader import MAX_BUNDLE_BYTES

SAMPLES = Path(__file__).resolve().parent.parent / "bundles"
EXPECT = re.compile(r"^# expect: line (\d+): (.+)$", re.MULTILINE)
BAD = sorted(SAMPLES.glob("*_bad.yaml"))
GOOD = sorted(SAMPLES.glob("*_good.yaml"))


def _expectation(path: Path) -> tuple[int, str]:
    found = EXPECT.search(path.read_text(encoding="utf-8"))
    assert found, f"{path.name}: no `# expect: line N: message` header"
    return int(found.group(1)), found.group(2)


# -- the built-in bundle ---------------------------------------------------------------------------


def test_the_default_bundle_loads() -> None:
    loaded = load_bundle()
    doc = loaded.document
    assert doc.bundle == "meridian-default"
    assert loaded.digest.startswith("sha256:")
    assert len(loaded.digest) == len("sha256:") + 64
    # Mainland China is CN alone; HK, MO and TW have zones of their own.
    assert doc.groups["mainland-china"].include == ("CN",)
    assert {"CN", "HK", "MO", "TW"} <= set(doc.jurisdictions)
    assert set(doc.partners) == {"bizconf", "suirui-zhumu", "systec-umeet"}
    assert len({r.id for r in doc.rules}) == len(doc.rules)


def test_the_default_bundle_is_the_packaged_file() -> None:
    assert default_bundle_path().is_file()
    assert load_bundle(default_bundle_path()).digest == load_bundle().digest


def test_a_missing_bundle_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"no bundle file at `.*nowhere\.yaml`"):
        load_bundle(tmp_path / "nowhere.yaml")


# -- the JSON Schema -------------------------------------------------------------------------------


def test_the_json_schema_is_json_with_a_dialect() -> None:
    text = json.dumps(bundle_json_schema())
    schema = json.loads(text)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["type"] == "object"
    assert {"bundle", "version", "rules"} <= set(schema["properties"])
    assert {"bundle", "version", "rules"} <= set(schema["required"])
    # The document's spelling (aliases) is what the schema describes.
    assert "from" in json.dumps(schema["$defs"]["Window"])


# -- the sample pairs ------------------------------------------------------------------------------


def test_the_samples_come_in_pairs() -> None:
    assert len(BAD) >= 10
    bad = {p.name.removesuffix("_bad.yaml") for p in BAD}
    good = {p.name.removesuffix("_good.yaml") for p in GOOD}
    assert bad == good


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_a_good_sample_loads(path: Path) -> None:
    loaded = load_bundle(path)
    assert loaded.source == str(path)
    Engine(loaded)  # and compiles


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_a_bad_sample_is_refused_at_its_line(path: Path) -> None:
    line, fragment = _expectation(path)
    marked = [
        i
        for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if text.endswith("# <- here")
    ]
    assert marked == [line], f"{path.name}: the header and the `# <- here` mark disagree"

    with pytest.raises(BundleError) as caught:
        load_bundle(path)
    first = caught.value.problems[0]
    assert first.line == line, str(caught.value)
    assert first.source == str(path)
    assert fragment in first.message
    # One line, lowercase, no final period; the error's text is `file:line: message`.
    assert "\n" not in first.message
    assert first.message[0].islower() or first.message[0] == "`"
    assert not first.message.endswith(".")
    assert str(caught.value).splitlines()[0] == f"{path}:{line}: {first.message}"


def test_norway_stays_a_country_code() -> None:
    doc = load_bundle(SAMPLES / "norway_good.yaml").document
    assert "NO" in doc.jurisdictions
    rule = next(r for r in doc.rules if r.id == "de-free-hosting")
    assert rule.jurisdictions == ("DE", "NO")
    engine = Engine(load_bundle(SAMPLES / "norway_good.yaml"))
    before = engine.decide(
        {
            "action": "host",
            "at": "2020-05-16T23:59:59+02:00",
            "subject": {"type": "individual", "country": "NO"},
        }
    )
    after = engine.decide(
        {
            "action": "host",
            "at": "2020-05-17T00:00:00+02:00",
            "subject": {"type": "individual", "country": "NO"},
        }
    )
    assert (before.decision, after.decision) == ("deny", "allow")


def test_every_problem_is_listed_with_its_line() -> None:
    text = (SAMPLES / "unknown_jurisdiction_bad.yaml").read_text(encoding="utf-8")
    text = text.replace("    effect: forbid\n", "    effect: block\n")
    with pytest.raises(BundleError) as caught:
        load_bundle_text(text, "two.yaml")
    # pydantic reports the effect first; the cross-checks do not run on an invalid document, so
    # at least the effect is reported, with its own line.
    lines = text.splitlines()
    effect_line = lines.index("    effect: block") + 1
    assert caught.value.problems[0].line == effect_line
    assert all(p.source == "two.yaml" for p in caught.value.problems)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "a bundle must be a YAML mapping"),
        ("- just\n- a list\n", "a bundle must be a YAML mapping"),
        ("bundle: [unclosed\n", "malformed yaml"),
    ],
    ids=["empty", "a list", "unclosed flow"],
)
def test_a_document_that_is_not_a_bundle(text: str, fragment: str) -> None:
    with pytest.raises(BundleError) as caught:
        load_bundle_text(text)
    assert fragment in caught.value.problems[0].message
    assert caught.value.problems[0].line is not None


# -- windows over `unknown` ------------------------------------------------------------------------

UNKNOWN_WINDOW = (
    (SAMPLES / "missing_zone_good.yaml")
    .read_text(encoding="utf-8")
    .replace(
        "    jurisdictions:\n      - mainland-china\n    effective: {from: 2020-08-23}\n",
        "    jurisdictions: [unknown]\n    effective: {from: 2020-08-23}\n",
    )
)


def test_a_windowed_rule_over_unknown_is_refused_at_its_line() -> None:
    # `unknown` has no local time, so a window there cannot be read. (It once passed the loader
    # and crashed compilation with a bare AssertionError.)
    with pytest.raises(BundleError) as caught:
        load_bundle_text(UNKNOWN_WINDOW, "unknown-window.yaml")
    first = caught.value.problems[0]
    assert first.line == UNKNOWN_WINDOW.splitlines().index("    jurisdictions: [unknown]") + 1
    assert "`unknown`" in first.message
    assert "\n" not in first.message
    assert first.message[0] in "`abcdefghijklmnopqrstuvwxyz"


# -- the digest ------------------------------------------------------------------------------------


def _strip_comments(text: str) -> str:
    """Drop comment lines; add a blank line before each top-level key and a comment at the end."""
    kept = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    spaced = [f"\n{line}" if line[:1].isalpha() else line for line in kept]
    return "\n".join(spaced) + "\n# trailing comment\n"


def test_the_digest_ignores_comments_blank_lines_and_layout() -> None:
    text = default_bundle_path().read_text(encoding="utf-8")
    digest = load_bundle_text(text).digest
    assert load_bundle_text(_strip_comments(text)).digest == digest
    # The same document as JSON (flow style, keys sorted, dates as strings) is the same bundle.
    document = load_bundle().document.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    assert load_bundle_text(json.dumps(document, sort_keys=True, indent=1)).digest == digest
    assert (
        load_bundle_text(
            yaml.safe_dump(document, sort_keys=False, default_flow_style=True, width=4096)
        ).digest
        == digest
    )


def test_the_digest_changes_with_the_content() -> None:
    text = default_bundle_path().read_text(encoding="utf-8")
    digest = load_bundle_text(text).digest
    assert (
        load_bundle_text(
            text.replace("effective: {from: 2020-08-23}", "effective: {from: 2020-08-24}")
        ).digest
        != digest
    )
    assert (
        load_bundle_text(text.replace('version: "2020.12.18"', 'version: "2020.12.19"')).digest
        != digest
    )


def test_the_decisions_carry_the_digest() -> None:
    decision = meridian.decide(
        {
            "action": "join",
            "at": "2020-09-01T09:00:00+08:00",
            "subject": {"type": "individual", "country": "CN"},
        }
    )
    assert decision.bundle.digest == load_bundle().digest
    assert decision.to_dict()["bundle"] == {
        "name": "meridian-default",
        "version": "2020.12.18",
        "digest": load_bundle().digest,
    }


# -- hostile documents: aliases, depth, size, impossible dates, every problem at once ----------------

#: 371 bytes that expand to 9**9 strings when the aliases are followed (the issue's alias bomb)
ALIAS_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


# A hostile bundle's refusal must not do unbounded work: expanding the alias bomb or recursing
# 5,000 levels would take minutes and gigabytes. The bound below is a guard against that, not a
# speed figure (those live in bench/): ten seconds holds on a loaded 2-core machine, where the
# refusal takes milliseconds, and still fails long before an expansion would finish.
GUARD = 10.0


def _refused(text: str, source: str = "hostile.yaml") -> tuple[BundleError, float]:
    started = time.monotonic()
    with pytest.raises(BundleError) as caught:
        load_bundle_text(text, source)
    return caught.value, time.monotonic() - started


def test_an_alias_bomb_is_refused_fast_at_its_first_anchor() -> None:
    error, seconds = _refused(ALIAS_BOMB)
    assert seconds < GUARD, f"took {seconds:.1f} s"
    first = error.problems[0]
    assert (first.source, first.line) == ("hostile.yaml", 1)
    assert first.message.startswith("yaml anchors are not allowed in a bundle: `&a`")
    assert str(error).splitlines()[0].startswith("hostile.yaml:1: yaml anchors")
    assert any(p.line == 2 and "`*a`" in p.message for p in error.problems)


def test_a_self_referencing_alias_is_refused_at_its_line() -> None:
    text = (SAMPLES / "empty_window_good.yaml").read_text(encoding="utf-8")
    text = text.replace("description: a small", "description: &loop [*loop]\nnote: a small")
    error, seconds = _refused(text, "loop.yaml")
    assert seconds < GUARD, f"took {seconds:.1f} s"
    line = text.splitlines().index("description: &loop [*loop]") + 1
    assert [p.line for p in error.problems] == [line, line]
    assert "`&loop`" in error.problems[0].message
    assert "`*loop`" in error.problems[1].message


def test_a_merge_key_is_an_alias_too() -> None:
    error, _ = _refused("base: &base {a: 1}\nother:\n  <<: *base\n")
    assert [p.line for p in error.problems] == [1, 3]


def test_nesting_is_bounded() -> None:
    error, seconds = _refused("bundle: " + "[" * 5000 + "]" * 5000 + "\n")
    assert seconds < GUARD, f"took {seconds:.1f} s"
    assert error.problems[0].line == 1
    assert "nested more than" in error.problems[0].message


def test_a_bundle_larger_than_the_limit_is_refused_unread(tmp_path: Path) -> None:
    text = "# " + "x" * MAX_BUNDLE_BYTES + "\n"
    error, _ = _refused(text, "big.yaml")
    assert error.problems[0].message == (
        f"the bundle is {len(text)} bytes: a bundle may be at most {MAX_BUNDLE_BYTES} bytes"
    )
    path = tmp_path / "big.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BundleError, match=r"big\.yaml: the bundle is \d+ bytes"):
        load_bundle(path)


def test_an_impossible_date_is_a_problem_at_its_line_not_a_traceback(tmp_path: Path) -> None:
    text = (SAMPLES / "impossible_date_good.yaml").read_text(encoding="utf-8")
    text = text.replace("effective: {from: 2020-08-23}", "effective: {from: 2020-08-23, until: 2021-02-29}")
    error, _ = _refused(text, "dates.yaml")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "2021-02-29" in t)
    assert [(p.line, "`2021-02-29`" in p.message) for p in error.problems] == [(line, True)]


def test_schema_errors_and_unknown_jurisdictions_are_reported_in_one_pass() -> None:
    text = (SAMPLES / "unknown_jurisdiction_bad.yaml").read_text(encoding="utf-8")
    text = text.replace("    effect: forbid\n", "    effect: block\n")
    text = text.replace("  CN: {zone: Asia/Shanghai}\n", "  QQ: {zone: Asia/Shanghai}\n")
    error, _ = _refused(text, "both.yaml")
    lines = text.splitlines()
    found = {(p.line, p.message.split(":")[0]) for p in error.problems}
    assert (lines.index("    effect: block") + 1, "`rules.1.effect` is `block`") in found
    assert (
        lines.index("      - XX  # <- here") + 1,
        "unknown jurisdiction `XX`",
    ) in found
    assert (lines.index("  QQ: {zone: Asia/Shanghai}") + 1, "unknown jurisdiction `QQ`") in found
