"""Reports computed from the log alone, so anyone holding an export can recompute them."""

from .html import render_html
from .transparency import (
    FORMATS,
    Period,
    ReportFormat,
    StatedCheckpoint,
    TransparencyReport,
    compute_report,
    render,
    render_csv,
    render_json,
)

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
