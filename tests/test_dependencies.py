"""The dependencies: floors above the published advisories, and a hashed lock file that covers
every dependency pyproject.toml names, at versions the floors allow."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
LOCK = ROOT / "requirements.lock"

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


def _locked() -> dict[str, tuple[Version, list[str]]]:
    text = LOCK.read_text(encoding="utf-8")
    out: dict[str, tuple[Version, list[str]]] = {}
    # one entry: `name==version [; marker] \` then `--hash=sha256:…` lines
    for match in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)[^\n]*\n((?:\s+--hash=[^\n]+\n?)*)", text, re.M):
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", match.group(3))
        out[canonicalize_name(match.group(1))] = (Version(match.group(2)), hashes)
    return out


@pytest.mark.parametrize(("name", "fixed"), sorted(ADVISORIES.items()))
def test_runtime_floors_are_above_the_advisories(name: str, fixed: str) -> None:
    runtime = _runtime()
    assert name in runtime, f"{name} needs a floor of its own in pyproject.toml"
    spec = runtime[name].specifier
    floors = [Version(s.version) for s in spec if s.operator in (">=", "==")]
    assert floors, (name, str(spec))
    assert min(floors) >= Version(fixed), (name, str(spec))


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    assert LOCK.exists(), "no requirements.lock: run `make lock`"
    locked = _locked()
    wanted = list(_runtime().values()) + [
        Requirement(r) for extra in ("dev", "bench") for r in PROJECT["optional-dependencies"][extra]
    ]
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in locked, f"{name} is not in requirements.lock: run `make lock`"
        version, hashes = locked[name]
        assert req.specifier.contains(version, prereleases=True), (name, str(version), str(req.specifier))
    for name, (version, hashes) in locked.items():
        assert hashes, f"{name}=={version} has no hash in requirements.lock"
    for name, fixed in ADVISORIES.items():
        assert locked[name][0] >= Version(fixed), (name, locked[name][0])


def test_make_installs_from_the_lock_with_hashes_and_the_project_without_deps() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes -r $(LOCK)" in makefile
    assert "--no-deps -e ." in makefile
    assert re.search(r"^lock:", makefile, re.M)
    assert re.search(r"uv==\$\(UV_VERSION\)", makefile)
    assert re.search(r"^UV_VERSION := \d+\.\d+\.\d+$", makefile, re.M)
