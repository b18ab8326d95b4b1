"""Forms checked by the API's own input models, and their one-line errors.

A page accepts exactly what the API accepts: it validates a form with the same pydantic model the
route takes. A failure becomes one :class:`InputError` (422) for the page to show beside what the
user typed: a validator's own message as it is (it names the value), anything else as the field
and what is wrong with it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import InputError, shown
from ..http.errors import validation_fields

__all__ = ["form_error", "parse_form"]

M = TypeVar("M", bound=BaseModel)


def form_error(exc: ValidationError) -> InputError:
    """The first problem of a form that failed an input model, as one line."""
    errors = exc.errors(include_url=False)
    if errors and errors[0]["type"] == "value_error":
        return InputError(str(errors[0]["msg"]).replace("\n", " ").removeprefix("Value error, "))
    fields = validation_fields([dict(e) for e in errors])
    first = fields[0] if fields else {"field": "form", "message": "is invalid"}
    return InputError(f"invalid `{shown(first['field'])}`: {first['message']}")


def parse_form(model: type[M], data: dict[str, Any]) -> M:
    """``data`` (a form; empty fields left out) checked by the API's input ``model``."""
    try:
        return model.model_validate({k: v for k, v in data.items() if v not in (None, "")})
    except ValidationError as exc:
        raise form_error(exc) from None
