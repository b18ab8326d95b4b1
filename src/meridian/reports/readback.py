"""Reading a rendered transparency report back: the checkpoint and period it states."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from ..errors import InputError
from .html import stated_fields
from .model import Period, ReportFormat, parse_day

__all__ = ["StatedParameters", "stated_parameters"]


@dataclass(frozen=True, slots=True)
class StatedParameters:
    """What a rendered report says it was computed from: enough to recompute it."""

    size: int
    time: str
    period: Period


def stated_parameters(data: bytes, fmt: ReportFormat) -> StatedParameters:
    """The checkpoint size and time and the period a rendered report states.

    Raises :class:`InputError` when the report does not state them in the layout of ``fmt``.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the report is not utf-8 text") from None
    fields: dict[str, str] = {}
    if fmt == "json":
        try:
            doc = json.loads(text)
            fields = {
                "size": str(doc["checkpoint"]["size"]),
                "time": doc["checkpoint"]["time"],
                "from": doc["period"]["from"],
                "to": doc["period"]["to"],
            }
        except (ValueError, KeyError, TypeError):
            fields = {}
    elif fmt == "csv":
        names = {("checkpoint", "size"), ("checkpoint", "time"), ("period", "from")}
        names.add(("period", "to"))
        for row in csv.reader(io.StringIO(text, newline="")):
            if len(row) == 3 and (row[0], row[1]) in names:
                fields.setdefault(row[1], row[2])
    else:
        fields = stated_fields(text)
    missing = [k for k in ("size", "time", "from", "to") if not isinstance(fields.get(k), str)]
    if missing or not fields["size"].isdigit():
        raise InputError(
            f"the report does not state its checkpoint and period as a {fmt} transparency report does"
        )
    return StatedParameters(
        size=int(fields["size"]),
        time=fields["time"],
        period=Period(
            parse_day(fields["from"], "period from"), parse_day(fields["to"], "period to")
        ),
    )
