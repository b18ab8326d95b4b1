"""The layer contract in pyproject.toml names every top-level part of the package.

`make lint` runs `lint-imports`, which checks the contract; this test checks that the contract
leaves nothing out, so a new package cannot sit outside the layers unnoticed.
"""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import meridian

ROOT = Path(__file__).resolve().parents[1]


def _layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = config["tool"]["importlinter"]["contracts"]
    return [name.strip() for layer in contract["layers"] for name in layer.split("|")]


def test_every_top_level_module_has_a_layer() -> None:
    named = set(_layers())
    modules = {f"meridian.{info.name}" for info in pkgutil.iter_modules(meridian.__path__)}
    assert modules - named == set()
    assert named - modules == set()


def test_the_doors_sit_above_the_shared_http_layer_and_the_domain() -> None:
    layers = _layers()
    for door in ("meridian.api", "meridian.web", "meridian.node"):
        assert layers.index(door) < layers.index("meridian.http") < layers.index("meridian.legal")
