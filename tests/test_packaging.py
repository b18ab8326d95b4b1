"""What the package carries: one version source, the typing marker, the licence it declares."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

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
