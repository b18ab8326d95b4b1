"""One page of a listing and the count of the whole, the shape every list endpoint returns."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

__all__ = ["page"]

T = TypeVar("T")


def page(
    session: Session,
    model: type[T],
    where: list[ColumnElement[bool]],
    order_by: tuple[Any, ...],
    *,
    limit: int,
    offset: int,
) -> tuple[list[T], int]:
    """Rows of ``model`` matching ``where`` in ``order_by`` order, and how many match in all."""
    total = session.scalar(select(func.count()).select_from(model).where(*where)) or 0
    rows = session.scalars(
        select(model).where(*where).order_by(*order_by).limit(limit).offset(offset)
    ).all()
    return list(rows), total
