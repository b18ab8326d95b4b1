"""Reports computed from the log alone, so anyone holding an export can recompute them."""

from .compute import compute_report
from .html import render_html
from .model import FORMATS, Period, ReportFormat, StatedCheckpoint, TransparencyReport
from .render import render, render_csv, render_json

__all__ = [
    "FORMATS",
    "Period",
    "ReportFormat",
    "StatedCheckpoint",
    "TransparencyReport",
    "compute_report",
    "render",
    "render_csv",
    "render_html",
    "render_json",
]
