"""The dependencies: floors above the published advisories, and two hashed lock files at the same
pins: requirements.lock, the runtime that `make run` installs, and requirements-dev.lock, which
adds the test and benchmark tools; every dependency pyproject.toml names is in the right one, at a
version its range allows."""

from __future__ import annotations

import ast
import itertools
import re
import sys
import tomllib
from collections.abc import Callable
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"

#: the first release past each published advisory Meridian's runtime could be exposed to
ADVISORIES = {
    "cryptography": "44.0.1",  # OpenSSL in the wheels (CVE-2024-12797)
    "jinja2": "3.1.6",  # sandbox escape through |attr (CVE-2025-27516)
    "h11": "0.16",  # request smuggling (CVE-2025-43859)
    "pyjwt": "2.10.1",  # issuer check bypass in 2.10.0 (CVE-2024-53861)
    "starlette": "0.49.1",  # multipart DoS (0.40.0, 0.47.2), Range header DoS (0.49.1)
    "python-multipart": "0.0.22",  # form DoS (0.0.18), path traversal (0.0.22)
}


def _runtime() -> dict[str, Requirement]:
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    return {canonicalize_name(r.name): r for r in reqs}


def _locked(lock: Path = LOCK) -> dict[str, tuple[Version, list[str]]]:
    text = lock.read_text(encoding="utf-8")
    out: dict[str, tuple[Version, list[str]]] = {}
    # one entry: `name==version [; marker] \` then `--hash=sha256:…` lines
    for match in re.finditer(
        r"^([A-Za-z0-9_.\-]+)==([^\s;]+)[^\n]*\n((?:\s+--hash=[^\n]+\n?)*)", text, re.M
    ):
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", match.group(3))
        out[canonicalize_name(match.group(1))] = (Version(match.group(2)), hashes)
    return out


def _extras() -> list[Requirement]:
    return [
        Requirement(r)
        for extra in ("dev", "bench")
        for r in PROJECT["optional-dependencies"][extra]
    ]


@pytest.mark.parametrize(("name", "fixed"), sorted(ADVISORIES.items()))
def test_runtime_floors_are_above_the_advisories(name: str, fixed: str) -> None:
    runtime = _runtime()
    assert name in runtime, f"{name} needs a floor of its own in pyproject.toml"
    spec = runtime[name].specifier
    floors = [Version(s.version) for s in spec if s.operator in (">=", "==")]
    assert floors, (name, str(spec))
    assert min(floors) >= Version(fixed), (name, str(spec))


@pytest.mark.parametrize(
    ("lock", "wanted"),
    [
        pytest.param(LOCK, lambda: list(_runtime().values()), id="runtime"),
        pytest.param(DEV_LOCK, lambda: list(_runtime().values()) + _extras(), id="dev"),
    ],
)
def test_each_lock_pins_what_it_serves_with_hashes(
    lock: Path, wanted: Callable[[], list[Requirement]]
) -> None:
    assert lock.exists(), f"no {lock.name}: run `make lock`"
    locked = _locked(lock)
    for req in wanted():
        name = canonicalize_name(req.name)
        assert name in locked, f"{name} is not in {lock.name}: run `make lock`"
        version, hashes = locked[name]
        assert req.specifier.contains(version, prereleases=True), (
            name,
            str(version),
            str(req.specifier),
        )
    for name, (version, hashes) in locked.items():
        assert hashes, f"{name}=={version} has no hash in {lock.name}"
    for name, fixed in ADVISORIES.items():
        assert locked[name][0] >= Version(fixed), (name, locked[name][0])


def test_the_runtime_lock_holds_no_test_or_benchmark_tool() -> None:
    runtime = _locked(LOCK)
    only_extras = {canonicalize_name(r.name) for r in _extras()} - set(_runtime())
    assert not only_extras & set(runtime), sorted(only_extras & set(runtime))


def test_both_locks_pin_a_package_alike() -> None:
    runtime, dev = _locked(LOCK), _locked(DEV_LOCK)
    missing = sorted(set(runtime) - set(dev))
    assert not missing, f"in requirements.lock but not requirements-dev.lock: {missing}"
    for name, (version, hashes) in runtime.items():
        assert dev[name][0] == version, (
            f"{name}: {version} in requirements.lock, {dev[name][0]} in requirements-dev.lock"
        )
        assert set(hashes) <= set(dev[name][1]), (
            f"{name}=={version}: the two locks hash it differently"
        )


def test_make_installs_from_the_locks_with_hashes_and_the_project_without_deps() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes -r $(LOCK)" in makefile
    assert "--require-hashes -r $(DEV_LOCK)" in makefile
    assert "--no-deps -e ." in makefile
    assert re.search(r"^lock:", makefile, re.M)
    assert re.search(r"uv==\$\(UV_VERSION\)", makefile)
    assert re.search(r"^UV_VERSION := \d+\.\d+\.\d+$", makefile, re.M)


def _prerequisites(makefile: str, target: str) -> list[str]:
    match = re.search(rf"^{re.escape(target)}:([^\n#]*)", makefile, re.M)
    assert match is not None, f"no `{target}` target in the Makefile"
    return match.group(1).split()


def test_make_run_installs_the_runtime_only() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert _prerequisites(makefile, "run") == ["$(RUNTIME)"]
    runtime_recipe = makefile[makefile.index("$(RUNTIME):") :].split("\n\n", 1)[0]
    assert "$(DEV_LOCK)" not in runtime_recipe
    assert "npm ci" in runtime_recipe  # the pages need their vendored libraries
    for target in ("test", "lint", "bench", "install"):
        assert _prerequisites(makefile, target) == ["$(STAMP)"], target
    assert "$(RUNTIME)" in _prerequisites(makefile, "$(STAMP)")


def _imported_distributions() -> dict[str, set[str]]:
    """The distributions whose modules src/meridian imports, by the module that needs each."""
    provided = packages_distributions()
    needed: dict[str, set[str]] = {}
    for path in (ROOT / "src" / "meridian").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top in sys.stdlib_module_names or top == "meridian":
                    continue
                for dist in provided.get(top, [top]):
                    needed.setdefault(canonicalize_name(dist), set()).add(path.name)
    return needed


def test_what_the_package_imports_is_a_runtime_dependency() -> None:
    """`make run` installs the runtime lock alone: a module the service imports must be in it."""
    runtime = set(_runtime())
    runtime_locked = set(_locked(LOCK))
    for dist, where in sorted(_imported_distributions().items()):
        assert dist in runtime or dist in runtime_locked, (
            f"`{dist}` is imported by {sorted(where)} but is not a runtime dependency"
        )


def test_make_test_runs_every_test_once() -> None:
    """``make test`` is two pytest runs chosen by marker: together they must select every test,
    and no test twice, whichever of the markers that split them a test has."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile[makefile.index("\ntest:") :].split("\n\n", 1)[0]
    runs = [line for line in recipe.splitlines() if line.lstrip().startswith("$(BIN)/pytest")]
    expressions = [m.group(1) for line in runs if (m := re.search(r'-m "([^"]+)"', line))]
    assert len(expressions) == 2, recipe
    names = sorted(set(re.findall(r"[a-z_]+", " ".join(expressions))) - {"and", "or", "not"})
    for values in itertools.product([False, True], repeat=len(names)):
        marks = dict(zip(names, values, strict=True))
        chosen = [eval(e, {}, marks) for e in expressions]  # the Makefile's own marker expressions
        assert chosen.count(True) == 1, f"{marks}: chosen by {chosen.count(True)} runs"
