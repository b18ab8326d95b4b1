"""The API's documentation pages: ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc).

Both libraries are vendored from the npm registry into ``/static/vendor`` by ``make`` (never a
CDN), so the pages draw offline; the few lines that start them are files in
``/static/api-docs``, so the pages' Content-Security-Policy (``web.security``) needs no inline
script.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
{css}
</head>
<body>
<div id="{root}" data-openapi="/openapi.json"></div>
<script src="/static/vendor/{library}"></script>
<script src="/static/api-docs/{start}"></script>
</body>
</html>
"""


def _page(title: str, root: str, library: str, start: str, css: str = "") -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(title=escape(title), root=root, library=library, start=start, css=css)
    )


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return _page(
        "Meridian API",
        "swagger-ui",
        "swagger-ui-bundle.js",
        "swagger.js",
        css='<link rel="stylesheet" href="/static/vendor/swagger-ui.css">',
    )


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return _page("Meridian API (ReDoc)", "redoc", "redoc.standalone.js", "redoc.js")
