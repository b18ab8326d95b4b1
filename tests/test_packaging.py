"""What the package carries: the typing marker, the licence it declares."""

from __future__ import annotations

import tomllib
from pathlib import Path

import meridian

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


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
