"""Page: what a proposed bundle changes — the exact policy diff against the bundle in force.

``/console/policy/diff``: paste a bundle's YAML; the page lists every class of request the
proposal decides otherwise than the bundle in force (:func:`meridian.policy.diff.diff_bundles`,
as ``meridian policy diff`` prints it), with the window in local time and UTC, an example
request per class, the counts and the diff's digest. Nothing is put in force here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from ...errors import BundleError, BundleProblem, InputError, MeridianError
from ...policy.diff import diff_bundles
from ...policy.loader import load_bundle_text
from ...runtime import Runtime
from ..deps import CsrfChecked, Viewer, page_for
from ..render import render

router = APIRouter(include_in_schema=False)
__all__ = ["router"]

Operator = Annotated[Viewer, page_for("operator")]
#: the largest bundle the page accepts, as ``PUT /v1/policy`` does
MAX_BUNDLE = 1_000_000
SOURCE = "<proposal>"


def _when(local: str | None, utc: str | None, zone: str) -> dict[str, str]:
    if local is None or utc is None:
        return {"local": "…", "utc": "…"}
    at = datetime.fromisoformat(local).astimezone(ZoneInfo(zone))
    return {
        "local": f"{at:%Y-%m-%d %H:%M} {at.tzname()}",
        "utc": utc.replace("T", " ").replace("Z", " UTC"),
    }


def _rows(diff: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for c in diff["classes"]:
        w = c["window"]
        facts = [f"{k}={'|'.join(v)}" for k, v in c["facts"].items() if v != ["*"]]
        if c["org_code"] != "*":
            facts.append(f"org_id={c['org_code']}")
        under = c["judged_under"]
        rows.append(
            {
                **c,
                "under": ", ".join(under["old"])
                if under["old"] == under["new"]
                else f"{', '.join(under['old'])} / {', '.join(under['new'])}",
                "facts_text": " ".join(facts) or "any",
                "from": _when(w["from_local"], w["from_utc"], w["zone"]),
                "until": _when(w["until_local"], w["until_utc"], w["zone"]),
            }
        )
    return rows


def _page(
    request: Request,
    text: str,
    *,
    diff: dict[str, Any] | None = None,
    problems: tuple[BundleProblem, ...] = (),
    error: MeridianError | None = None,
) -> HTMLResponse:
    rt: Runtime = request.app.state.runtime
    ref = rt.engine.bundle.ref
    return render(
        request,
        "console/policy_diff.html",
        {
            "title": "What a bundle changes",
            "section": "diff",
            "bundle": {"name": ref.name, "version": ref.version, "digest": ref.digest},
            "text": text,
            "diff": diff,
            "rows": [] if diff is None else _rows(diff),
            "problems": sorted(problems, key=lambda p: (p.line is None, p.line or 0)),
            "error": None if error is None else error.message,
        },
        status=200 if error is None else error.http_status,
        active="policy",
    )


@router.get("/console/policy/diff", response_class=HTMLResponse)
def diff_form(request: Request, viewer: Operator) -> HTMLResponse:
    return _page(request, "")


@router.post("/console/policy/diff", response_class=HTMLResponse, dependencies=[CsrfChecked])
def diff(request: Request, viewer: Operator, yaml: Annotated[str, Form()] = "") -> HTMLResponse:
    """The diff of the pasted bundle against the bundle in force; nothing is put in force."""
    rt: Runtime = request.app.state.runtime
    yaml = yaml.replace("\r\n", "\n")  # a browser sends a textarea's lines with CRLF
    if not yaml.strip():
        return _page(
            request, yaml, error=InputError("paste a bundle's yaml to see what it changes")
        )
    if len(yaml) > MAX_BUNDLE:
        return _page(
            request,
            "",
            error=InputError(f"the bundle has {len(yaml):,} characters: at most {MAX_BUNDLE:,}"),
        )
    try:
        proposed = load_bundle_text(yaml, SOURCE)
    except BundleError as exc:
        count = len(exc.problems)
        summary = InputError(
            f"the bundle cannot be read: {count} problem{'' if count == 1 else 's'}, listed below"
        )
        return _page(request, yaml, problems=exc.problems, error=summary)
    found = diff_bundles(rt.engine.bundle, proposed, locator=rt.locator)
    return _page(request, yaml, diff=found.to_dict())
