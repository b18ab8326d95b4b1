"""One error hierarchy: every error class lives in ``meridian.errors``, and its tree is drawn there."""

from __future__ import annotations

import importlib
import pkgutil
import re

import meridian
from meridian import errors

#: signals that never leave their module and must not be refusals: a refusal handler
#: (``except MeridianError``) would otherwise catch them
_SIGNALS = {
    # raised out of ``receive`` into the app so it stops reading; the middleware answers 413
    "meridian.http.bodylimit._TooLargeError",
    # the relay's socket closed before it sent its grant: nothing to refuse, nobody to tell
    "meridian.node.relay._GoneError",
}


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(meridian.__path__, "meridian."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def _tree() -> dict[str, str | None]:
    """The docstring's tree: each class drawn, with the class drawn as its parent."""
    doc = errors.__doc__ or ""
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    parents: dict[str, str | None] = {}
    stack: list[str] = []
    for line in block.splitlines():
        match = re.search(r"[A-Za-z]\w*", line)
        assert match is not None, line
        depth = (match.start() - 4) // 4
        name = match.group()
        del stack[depth:]
        parents[name] = stack[-1] if stack else None
        stack.append(name)
    return parents


def test_every_error_class_is_defined_in_errors() -> None:
    elsewhere = sorted(
        name
        for name, cls in _exception_classes().items()
        if cls.__module__ != "meridian.errors" and name not in _SIGNALS
    )
    assert elsewhere == []


def test_the_private_signals_are_not_refusals() -> None:
    found = _exception_classes()
    for name in _SIGNALS:
        assert name in found, f"`{name}` is gone: take it off the list"
        assert not issubclass(found[name], errors.MeridianError)


def test_every_error_derives_from_the_root() -> None:
    for name, cls in _exception_classes().items():
        if name not in _SIGNALS:
            assert issubclass(cls, errors.MeridianError), name


def test_the_tree_draws_exactly_the_classes() -> None:
    drawn = _tree()
    defined = {
        cls.__name__: cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, BaseException)
    }
    assert sorted(drawn) == sorted(defined)
    for name, parent in drawn.items():
        (base,) = defined[name].__bases__
        assert base.__name__ == (parent or "Exception"), name


def test_every_error_class_is_exported() -> None:
    defined = {
        cls.__name__
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.MeridianError)
    }
    assert defined <= set(errors.__all__)
