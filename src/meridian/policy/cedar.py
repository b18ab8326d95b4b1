"""A compiled bundle as Cedar policies and a Cedar schema, and a :class:`Facts` as a Cedar request.

The export lets Cedar (through ``cedarpy``) check Meridian's decisions: the differential test in
``tests/policy/test_cedar.py`` puts the same facts through both engines and requires the same
decision and the same deciding rules. Location resolution stays Meridian's; each engine only
applies the rules to one :class:`Facts` (one candidate jurisdiction).

The translation
---------------

* Namespace ``Meridian``. The principal is ``Meridian::Subject::"subject"`` and the resource
  ``Meridian::Resource::"resource"``: neither carries data, every fact travels in the context.
  The actions are ``Meridian::Action::"register"``, ``"purchase"``, ``"renew"``, ``"host"`` and
  ``"join"``.
* The context is a record with every :class:`Facts` field, all REQUIRED: ``jurisdiction``,
  ``type``, ``plan``, ``channel``, ``partner``, ``uscc`` and ``org_id`` are ``String``, ``at`` is
  a ``Long`` (``Facts.epoch``, UTC epoch seconds).
* Each bundle rule becomes one policy, in bundle order::

      @id("cn-direct-sales-end")
      forbid (principal, action in [Meridian::Action::"purchase", ...], resource)
      when { <jurisdiction scope> && <condition> };

  The scope lists the rule's jurisdictions after :func:`expand_jurisdictions` (groups,
  ``everywhere``; ``unknown`` stays the word ``"unknown"``). Without an effective window it is
  ``[...].contains(context.jurisdiction)`` (or, for more than half of all codes, the shorter
  complement: ``context.jurisdiction != "unknown" && !["CN"].contains(...)``); with one, each jurisdiction carries its own bounds
  from :func:`window_epochs` (local time differs by zone), ``context.at >= from`` and
  ``context.at < until``, a missing bound being omitted. Jurisdictions whose bounds coincide
  share one clause.
* Conditions: ``attribute: X, in: [...]`` is ``[...].contains(context.X)``; ``all`` is ``&&``
  (``true`` when empty), ``any`` is ``||`` (``false`` when empty), ``not`` is ``!``.
  ``partner_authorised: true`` is a disjunction over the compiled bundle's partner windows,
  ``(context.partner == "bizconf" && context.jurisdiction == "CN" && <bounds>)``, or ``false``
  when no partner is active anywhere; ``partner_authorised: false`` is its negation.

Cedar's combining rule is Meridian's: forbid overrides permit, otherwise a permit allows,
otherwise deny; the deciding rules are the satisfied forbids on deny and the satisfied permits on
allow, which Cedar reports as ``diagnostics.reason`` (map them back with their ``@id``).

The fail-open trap, and why the schema closes it
------------------------------------------------

Cedar skips a policy whose evaluation errors (reading a missing attribute, comparing a string
with a number) and reports the error in the diagnostics: an erroring *forbid* lets the request
through. Meridian treats an erroring rule as a forbid instead. The schema closes the gap:
``cedarpy.validate_policies(export.policies, export.schema)`` type-checks every policy against a
context whose attributes are all required and typed, so no exported policy can error at run time,
and passing the schema to ``is_authorized`` rejects a request whose context lacks an attribute or
has one of the wrong type.

The export needs no Cedar library: ``cedarpy`` is a development and benchmark dependency.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..geography.jurisdictions import ALL_JURISDICTIONS, UNKNOWN
from .compiled import CompiledBundle, Facts, expand_jurisdictions, window_epochs
from .model import (
    AllOf,
    AnyOf,
    Attribute,
    AttributeIn,
    Condition,
    Not,
    PartnerAuthorised,
    RuleSpec,
)
from .request import ACTIONS

__all__ = ["CedarExport", "cedar_request", "export_cedar"]

NAMESPACE = "Meridian"
_PRINCIPAL = ("Subject", "subject")  # (entity type, id)
_RESOURCE = ("Resource", "resource")

#: The context record: every Facts field, its Cedar type. All are required.
CONTEXT_TYPES: dict[str, str] = {
    "jurisdiction": "String",
    "at": "Long",
    "type": "String",
    "plan": "String",
    "channel": "String",
    "partner": "String",
    "uscc": "String",
    "org_id": "String",
}

_FIELDS: dict[Attribute, str] = {
    Attribute.SUBJECT_TYPE: "type",
    Attribute.SUBJECT_PLAN: "plan",
    Attribute.SUBJECT_USCC: "uscc",
    Attribute.RESOURCE_CHANNEL: "channel",
    Attribute.RESOURCE_PARTNER: "partner",
}

_Bounds = tuple[int | None, int | None]


@dataclass(frozen=True)
class CedarExport:
    """A bundle in Cedar: the policy text and the JSON schema to validate it (and requests) with."""

    policies: str  # one policy per bundle rule, each with @id("<rule id>")
    schema: dict[str, Any]


# -- literals ---------------------------------------------------------------------------------


def cedar_string(text: str) -> str:
    """``text`` as a Cedar string literal: quoted, with ``\\``, ``"`` and non-printables escaped."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.append(f"\\u{{{ord(char):x}}}")
    return '"' + "".join(out) + '"'


def _string_set(values: Iterable[str]) -> str:
    return "[" + ", ".join(cedar_string(v) for v in values) + "]"


def _action_uid(action: str) -> str:
    return f"{NAMESPACE}::Action::{cedar_string(action)}"


# -- jurisdiction scopes ----------------------------------------------------------------------


def _by_bounds(entries: Iterable[tuple[str, int | None, int | None]]) -> dict[_Bounds, list[str]]:
    """Jurisdictions grouped by their ``[from, until)`` epochs, in first-seen order."""
    groups: dict[_Bounds, list[str]] = {}
    for jurisdiction, start, end in entries:
        groups.setdefault((start, end), []).append(jurisdiction)
    return groups


def _membership(jurisdictions: list[str]) -> str:
    """``context.jurisdiction`` is one of ``jurisdictions``, written as briefly as Cedar allows.

    A scope such as ``everywhere`` names some 250 codes, and Cedar builds a set literal on every
    request; past half of all codes the complement is shorter. INVARIANT: a context's
    jurisdiction is an ISO 3166-1 code or ``unknown`` (the engine's facts never hold anything
    else), so "not one of the others" means the same as "one of these".
    """
    codes = [j for j in jurisdictions if j != UNKNOWN]
    if len(codes) <= len(ALL_JURISDICTIONS) // 2:
        if len(jurisdictions) == 1:
            return f"context.jurisdiction == {cedar_string(jurisdictions[0])}"
        return f"{_string_set(jurisdictions)}.contains(context.jurisdiction)"
    chosen = set(codes)
    others = [c for c in ALL_JURISDICTIONS if c not in chosen]
    parts = [] if UNKNOWN in jurisdictions else [f"context.jurisdiction != {cedar_string(UNKNOWN)}"]
    if len(others) == 1:
        parts.append(f"context.jurisdiction != {cedar_string(others[0])}")
    elif others:
        parts.append(f"!{_string_set(others)}.contains(context.jurisdiction)")
    return " && ".join(parts) or "true"


def _clause(jurisdictions: list[str], bounds: _Bounds) -> str:
    """``context.jurisdiction`` is one of ``jurisdictions`` and ``context.at`` lies in bounds."""
    parts = [_membership(jurisdictions)]
    start, end = bounds
    if start is not None:
        parts.append(f"context.at >= {start}")
    if end is not None:
        parts.append(f"context.at < {end}")
    return " && ".join(parts)


def _any_of(clauses: list[str]) -> str:
    """A disjunction, each term parenthesised; ``false`` when there is none."""
    if not clauses:
        return "false"
    if len(clauses) == 1:
        return clauses[0]
    return " || ".join(f"({c})" for c in clauses)


def _rule_scope(bundle: CompiledBundle, spec: RuleSpec) -> str:
    doc = bundle.document
    entries = (
        (j, *window_epochs(doc, spec.effective, j))
        for j in expand_jurisdictions(doc, spec.jurisdictions)
    )
    return _any_of([_clause(jurs, b) for b, jurs in _by_bounds(entries).items()])


def _partner_authorised(bundle: CompiledBundle) -> str:
    """True when ``context.partner`` is authorised in ``context.jurisdiction`` at ``context.at``."""
    per_partner: dict[str, list[tuple[str, int | None, int | None]]] = {}
    for (partner, jurisdiction), windows in bundle.partner_windows.items():
        per_partner.setdefault(partner, []).extend((jurisdiction, w.start, w.end) for w in windows)
    clauses = [
        f"context.partner == {cedar_string(partner)} && {_clause(jurs, bounds)}"
        for partner, entries in per_partner.items()
        for bounds, jurs in _by_bounds(entries).items()
    ]
    return _any_of(clauses)


# -- conditions -------------------------------------------------------------------------------


def _condition(cond: Condition, bundle: CompiledBundle) -> str:
    """A bundle condition as a Cedar expression over the context."""
    if isinstance(cond, AttributeIn):
        return f"{_string_set(cond.in_)}.contains(context.{_FIELDS[cond.attribute]})"
    if isinstance(cond, PartnerAuthorised):
        authorised = _partner_authorised(bundle)
        return authorised if cond.partner_authorised else f"!({authorised})"
    if isinstance(cond, AllOf):
        return " && ".join(f"({_condition(c, bundle)})" for c in cond.all) or "true"
    if isinstance(cond, AnyOf):
        return " || ".join(f"({_condition(c, bundle)})" for c in cond.any) or "false"
    if isinstance(cond, Not):
        return f"!({_condition(cond.not_, bundle)})"
    raise TypeError(f"unknown condition `{cond!r}`")  # pragma: no cover - the model is closed


def _policy(spec: RuleSpec, bundle: CompiledBundle) -> str:
    """One rule as one Cedar policy, annotated with its id and description."""
    actions = ", ".join(_action_uid(a.value) for a in dict.fromkeys(spec.actions))
    test = f"({_rule_scope(bundle, spec)})"
    if spec.when is not None:
        test += f" && ({_condition(spec.when, bundle)})"
    return (
        f"@id({cedar_string(spec.id)})\n"
        f"@description({cedar_string(spec.description)})\n"
        f"{spec.effect.value} (\n"
        f"  principal,\n"
        f"  action in [{actions}],\n"
        f"  resource\n"
        f")\n"
        f"when {{ {test} }};\n"
    )


# -- schema and requests ----------------------------------------------------------------------


def _schema() -> dict[str, Any]:
    """The Cedar JSON schema: the two entity types, the actions and the all-required context."""
    context = {
        "type": "Record",
        "attributes": {
            name: {"type": kind, "required": True} for name, kind in CONTEXT_TYPES.items()
        },
    }
    applies_to = {
        "principalTypes": [_PRINCIPAL[0]],
        "resourceTypes": [_RESOURCE[0]],
        "context": {"type": "Context"},
    }
    return {
        NAMESPACE: {
            "commonTypes": {"Context": context},
            "entityTypes": {_PRINCIPAL[0]: {}, _RESOURCE[0]: {}},
            "actions": {action: {"appliesTo": applies_to} for action in ACTIONS},
        }
    }


def export_cedar(bundle: CompiledBundle) -> CedarExport:
    """The bundle's rules as Cedar policies, one per rule in bundle order, and their schema."""
    policies = "\n".join(_policy(spec, bundle) for spec in bundle.document.rules)
    return CedarExport(policies=policies, schema=_schema())


def cedar_request(action: str, facts: Facts) -> dict[str, Any]:
    """The cedarpy request for ``action`` under ``facts`` (entity uids in their JSON form)."""
    return {
        "principal": {"type": f"{NAMESPACE}::{_PRINCIPAL[0]}", "id": _PRINCIPAL[1]},
        "action": {"type": f"{NAMESPACE}::Action", "id": action},
        "resource": {"type": f"{NAMESPACE}::{_RESOURCE[0]}", "id": _RESOURCE[1]},
        "context": {
            "jurisdiction": facts.jurisdiction,
            "at": facts.epoch,
            "type": facts.type,
            "plan": facts.plan,
            "channel": facts.channel,
            "partner": facts.partner,
            "uscc": facts.uscc,
            "org_id": facts.org_id,
        },
    }
