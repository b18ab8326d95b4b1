"""What the package carries: one version source, the typing marker, the licence it declares."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import meridian

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_version_is_set_once_in_the_package() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project, (
        "pyproject.toml sets the version: meridian.__version__ is the one source"
    )
    assert "version" in project.get("dynamic", [])
    path = PYPROJECT["tool"]["hatch"]["version"]["path"]
    source = (ROOT / path).read_text(encoding="utf-8")
    assigned = [
        node.value.value
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert assigned == [meridian.__version__]


def test_the_package_is_marked_typed() -> None:
    package = Path(meridian.__file__).parent
    assert (package / "py.typed").is_file()
    assert PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/meridian"]


def test_the_licence_pyproject_declares_is_at_the_root() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


@pytest.mark.slow  # builds the wheel: about 10 s
def test_the_wheel_carries_the_pages_vendored_libraries(tmp_path: Path) -> None:
    """The vendored front-end files are ignored by git (``make install`` copies them from npm),
    and hatch leaves out what git ignores unless told: a wheel without them serves pages with no
    map and no API docs."""
    vendor = Path(meridian.__file__).parent / "web" / "static" / "vendor"
    expected = sorted(p.name for p in vendor.iterdir())
    assert "d3-geo.min.js" in expected, "run `make install`: it vendors the front-end files"
    built = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "--target", "wheel", "--directory", tmp_path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("meridian-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    carried = sorted(
        n.rsplit("/", 1)[1] for n in names if n.startswith("meridian/web/static/vendor/")
    )
    assert carried == expected
    assert "meridian/py.typed" in names
