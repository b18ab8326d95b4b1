"""The engines the decision benchmark compares, each behind one small adapter.

Every adapter turns a :class:`Case` (one parsed request and the :class:`Facts` Meridian's
location resolution produced for it) into the engine's native input with ``prepare`` (untimed),
decides it with ``run`` (the timed call) and reads the engine's answer back with ``verdict``
(untimed) as ``(allowed, deciding rule ids)``.

Only Meridian resolves location: the other engines receive one request per :class:`Facts` (one
per jurisdiction the subject is judged under) and the request is allowed only if every one is,
with the deciding ids the union over the denying ones (over all when allowed), as in
:meth:`meridian.policy.Engine.decide`.

The policies of the other engines are all generated from the compiled bundle, never written per
rule:

* **cedarpy** uses :func:`meridian.policy.cedar.export_cedar` (one policy per rule, ``@id`` the
  rule id) and parses policies, schema and the (empty) entity set into handles once.
* **pycasbin** gets an ABAC model (:func:`casbin_model`) and one policy line per (rule, action,
  jurisdiction) whose ``cond`` field is a Python expression over the request's facts, evaluated
  with casbin's ``eval()`` matcher function; see :class:`CasbinAdapter` for how all the deciding
  rule ids are obtained from an API that explains one rule.
* **regorus** gets a Rego module (:func:`rego_module`) with ``deny contains id if {...}`` and
  ``permit contains id if {...}`` and a ``result`` object, plus a data document holding each
  rule's jurisdictions and windows and each partner's windows (:func:`rego_data`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from meridian.policy import CompiledBundle, Engine, Request
from meridian.policy.compiled import Facts, expand_jurisdictions, window_epochs
from meridian.policy.model import (
    AllOf,
    AnyOf,
    Attribute,
    AttributeIn,
    Condition,
    Not,
    PartnerAuthorised,
    RuleSpec,
    Window,
)

__all__ = [
    "ADAPTERS",
    "Adapter",
    "CasbinAdapter",
    "Case",
    "CedarAdapter",
    "MeridianAdapter",
    "RegorusAdapter",
    "RegorusRvmAdapter",
    "Verdict",
    "casbin_model",
    "cases_for",
    "combine",
    "rego_data",
    "rego_module",
]

#: (allowed, ids of the deciding rules)
Verdict = tuple[bool, frozenset[str]]

#: The Facts slot each condition attribute reads.
_FIELD: dict[Attribute, str] = {
    Attribute.SUBJECT_TYPE: "type",
    Attribute.SUBJECT_PLAN: "plan",
    Attribute.SUBJECT_USCC: "uscc",
    Attribute.RESOURCE_CHANNEL: "channel",
    Attribute.RESOURCE_PARTNER: "partner",
}


@dataclass(frozen=True)
class Case:
    """One benchmark request: parsed, with the facts each jurisdiction judges."""

    request: Request
    action: str
    facts: tuple[Facts, ...]


def cases_for(engine: Engine, requests: Iterable[Request]) -> list[Case]:
    """The cases for ``requests``, with facts from Meridian's own location resolution."""
    return [Case(r, str(r.action), tuple(engine.facts(r))) for r in requests]


def combine(verdicts: Sequence[Verdict]) -> Verdict:
    """Several jurisdictions' verdicts as one: allowed only if all allow (Meridian's rule)."""
    denied = [ids for allowed, ids in verdicts if not allowed]
    if denied:
        return False, frozenset().union(*denied)
    return True, frozenset().union(*(ids for _, ids in verdicts))


class Adapter(Protocol):
    """What the harness needs from an engine."""

    name: str

    def prepare(self, case: Case) -> Any:
        """The engine's native input for ``case`` (built before timing)."""

    def run(self, native: Any) -> Any:
        """Decide one request: the timed call."""

    def verdict(self, raw: Any) -> Verdict:
        """``run``'s answer as ``(allowed, ids)``."""


# -- Meridian ----------------------------------------------------------------------------------


class MeridianAdapter:
    """Meridian itself: ``Engine.decide`` on the parsed request, location and reasons included."""

    name = "meridian"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.run: Callable[[Request], Any] = engine.decide

    def prepare(self, case: Case) -> Request:
        return case.request

    def verdict(self, raw: Any) -> Verdict:
        return raw.allowed, frozenset(raw.rule_ids)


# -- cedarpy -----------------------------------------------------------------------------------


class CedarAdapter:
    """cedarpy with policies, schema and entities parsed once into handles.

    The native input is the request dict from :func:`meridian.policy.cedar.cedar_request` with
    its context already serialised to JSON (cedarpy accepts a string context; a dict would be
    ``json.dumps``-ed inside every call). One ``is_authorized`` call per :class:`Facts`.
    """

    name = "cedarpy"

    def __init__(self, bundle: CompiledBundle) -> None:
        import cedarpy

        from meridian.policy.cedar import export_cedar

        export = export_cedar(bundle)
        self._cedarpy = cedarpy
        self.policies = cedarpy.PolicySet.from_str(export.policies)
        self.schema = cedarpy.Schema.from_json_str(json.dumps(export.schema))
        self.entities = cedarpy.Entities.from_json_str("[]")
        self._authorize = cedarpy.is_authorized

    def prepare(self, case: Case) -> tuple[dict[str, Any], ...]:
        from meridian.policy.cedar import cedar_request

        out = []
        for facts in case.facts:
            request = cedar_request(case.action, facts)
            request["context"] = json.dumps(request["context"])
            out.append(request)
        return tuple(out)

    def run(self, native: tuple[dict[str, Any], ...]) -> list[Any]:
        authorize, policies, entities, schema = (
            self._authorize,
            self.policies,
            self.entities,
            self.schema,
        )
        return [authorize(r, policies, entities, schema) for r in native]

    def run_batch(self, natives: Sequence[tuple[dict[str, Any], ...]]) -> list[list[Any]]:
        """Every request in one ``is_authorized_batch`` call, regrouped per request."""
        flat = [r for native in natives for r in native]
        results = self._cedarpy.is_authorized_batch(flat, self.policies, self.entities, self.schema)
        grouped, at = [], 0
        for native in natives:
            grouped.append(results[at : at + len(native)])
            at += len(native)
        return grouped

    def verdict(self, raw: list[Any]) -> Verdict:
        return combine([self._one(result) for result in raw])

    @staticmethod
    def _one(result: Any) -> Verdict:
        diagnostics = result.diagnostics
        names = diagnostics.id_annotations_by_reason
        ids = frozenset(names.get(policy, policy) for policy in diagnostics.reasons)
        if diagnostics.errors:  # an erroring policy: never count it as agreement
            ids |= {f"!error: {e}" for e in diagnostics.errors}
        return result.allowed, ids


# -- pycasbin ----------------------------------------------------------------------------------

_CASBIN_MODEL = """
[request_definition]
r = act, jur, efts, skip, f

[policy_definition]
p = act, jur, eft, id, cond

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = r.act == p.act && r.jur == p.jur && p.eft in r.efts && p.id not in r.skip && eval(p.cond)
"""

_BOTH = ("allow", "deny")


def casbin_model() -> str:
    """The casbin model text: Cedar's combining rule is casbin's allow-and-deny effect."""
    return _CASBIN_MODEL


def _py_strings(values: Iterable[str]) -> str:
    return "(" + "".join(f"{v!r}, " for v in values) + ")"


def _py_window(lo: int | None, hi: int | None) -> list[str]:
    parts = []
    if lo is not None:
        parts.append(f"r.f.epoch >= {lo}")
    if hi is not None:
        parts.append(f"r.f.epoch < {hi}")
    return parts


class _CasbinConditions:
    """Conditions as Python expressions over ``r.f`` (the Facts), for casbin's ``eval()``."""

    def __init__(self, bundle: CompiledBundle) -> None:
        self.bundle = bundle

    def partner_authorised(self, jurisdiction: str) -> str:
        terms = []
        for (partner, where), windows in self.bundle.partner_windows.items():
            if where != jurisdiction:
                continue
            for w in windows:
                test = " and ".join([f"r.f.partner == {partner!r}", *_py_window(w.start, w.end)])
                terms.append(f"({test})")
        return " or ".join(terms) or "False"

    def expression(self, cond: Condition, jurisdiction: str) -> str:
        if isinstance(cond, AttributeIn):
            return f"r.f.{_FIELD[cond.attribute]} in {_py_strings(cond.in_)}"
        if isinstance(cond, PartnerAuthorised):
            test = f"({self.partner_authorised(jurisdiction)})"
            return test if cond.partner_authorised else f"not {test}"
        if isinstance(cond, AllOf):
            return " and ".join(f"({self.expression(c, jurisdiction)})" for c in cond.all) or "True"
        if isinstance(cond, AnyOf):
            return " or ".join(f"({self.expression(c, jurisdiction)})" for c in cond.any) or "False"
        if isinstance(cond, Not):
            return f"not ({self.expression(cond.not_, jurisdiction)})"
        raise TypeError(f"unknown condition `{cond!r}`")


def casbin_policy_lines(bundle: CompiledBundle) -> list[list[str]]:
    """One line ``[act, jur, eft, id, cond]`` per (rule, action, jurisdiction)."""
    doc = bundle.document
    conditions = _CasbinConditions(bundle)
    lines = []
    for spec in doc.rules:
        eft = "allow" if spec.effect.value == "permit" else "deny"
        for jurisdiction in expand_jurisdictions(doc, spec.jurisdictions):
            parts = _py_window(*window_epochs(doc, spec.effective, jurisdiction))
            if spec.when is not None:
                parts.append(f"({conditions.expression(spec.when, jurisdiction)})")
            cond = " and ".join(parts) or "True"
            for action in dict.fromkeys(a.value for a in spec.actions):
                lines.append([action, jurisdiction, eft, spec.id, cond])
    return lines


class CasbinAdapter:
    """pycasbin: a ``FastEnforcer``-style policy index on (act, jur) and casbin's ``eval()``.

    casbin explains a decision with ONE policy line (``enforce_ex``), so all deciding rules are
    collected by asking again: the first ``enforce_ex`` call gives casbin's decision (its
    allow-and-deny effect is Cedar's combining rule) and one explaining line; further calls,
    restricted to lines of the deciding effect (``r.efts``) and skipping the rules already found
    (``r.skip``), return the next explaining line until none is left. A request with ``k``
    deciding rules costs ``k + 1`` calls (one when nothing matched: default deny). The policy
    lines are filtered by (action, jurisdiction) with casbin's own ``fast_policy_filter`` (what
    ``FastEnforcer(cache_key_order=[0, 1])`` does in ``enforce``).
    """

    name = "pycasbin"

    def __init__(self, bundle: CompiledBundle) -> None:
        import casbin
        from casbin.model import FastModel, fast_policy_filter  # type: ignore[import-untyped]

        model = FastModel([0, 1])
        model.load_model_from_text(casbin_model())
        self.enforcer = casbin.FastEnforcer(model, cache_key_order=[0, 1])
        self.enforcer.add_policies(casbin_policy_lines(bundle))
        self._filter = fast_policy_filter
        self._policy = self.enforcer.get_model().model["p"]["p"].policy

    def prepare(self, case: Case) -> tuple[tuple[str, str, Facts], ...]:
        return tuple((case.action, f.jurisdiction, f) for f in case.facts)

    def _decide(self, action: str, jurisdiction: str, facts: Facts) -> Verdict:
        enforce_ex = self.enforcer.enforce_ex
        skip: set[str] = set()
        with self._filter(self._policy, action, jurisdiction):
            allowed, line = enforce_ex(action, jurisdiction, _BOTH, skip, facts)
            efts = ("allow",) if allowed else ("deny",)
            while line:
                skip.add(line[3])
                _, line = enforce_ex(action, jurisdiction, efts, skip, facts)
        return allowed, frozenset(skip)

    def run(self, native: tuple[tuple[str, str, Facts], ...]) -> list[Verdict]:
        return [self._decide(*one) for one in native]

    def verdict(self, raw: list[Verdict]) -> Verdict:
        return combine(raw)


# -- regorus -----------------------------------------------------------------------------------

_REGO_PRELUDE = """package meridian

import rego.v1

# data.bundle.scope[rule][jurisdiction]: the rule's window there, {"from": s, "until": s} in UTC
# epoch seconds; a jurisdiction missing from it is outside the rule.
# data.bundle.partners[partner][jurisdiction]: the partner's windows of authorisation there.

default partner_authorised := false

result := {"decision": "deny", "ids": deny} if count(deny) > 0
else := {"decision": "allow", "ids": permit} if count(permit) > 0
else := {"decision": "deny", "ids": set()}
"""


def _rego_string(text: str) -> str:
    return json.dumps(text)


def _rego_set(values: Iterable[str]) -> str:
    return "{" + ", ".join(_rego_string(v) for v in values) + "}"


def _rego_window(window: str, has_from: bool, has_until: bool) -> list[str]:
    """Tests that ``input.epoch`` lies in ``window``; an open end needs no test."""
    lines = []
    if has_from:
        lines.append(f"input.epoch >= {window}.from")
    if has_until:
        lines.append(f"input.epoch < {window}.until")
    return lines


def _rego_block(head: str, lines: list[str]) -> str:
    text = "".join(f"\t{line}\n" for line in lines or ["true"])
    return f"{head} if {{\n{text}}}\n"


class _RegoWriter:
    """Rule bodies as lists of Rego expressions, with helper rules for ``any`` and ``not``."""

    def __init__(self) -> None:
        self.helpers: list[str] = []
        self._count = 0

    def _helper(self, bodies: list[list[str]]) -> str:
        name = f"cond_{self._count}"
        self._count += 1
        self.helpers.extend(_rego_block(name, body) for body in bodies)
        if not bodies:
            self.helpers.append(f"{name} := false\n")
        return name

    def body(self, cond: Condition) -> list[str]:
        if isinstance(cond, AttributeIn):
            field = _FIELD[cond.attribute]
            if len(cond.in_) == 1:
                return [f"input.{field} == {_rego_string(cond.in_[0])}"]
            return [f"input.{field} in {_rego_set(cond.in_)}"]
        if isinstance(cond, PartnerAuthorised):
            return ["partner_authorised" if cond.partner_authorised else "not partner_authorised"]
        if isinstance(cond, AllOf):
            return [line for c in cond.all for line in self.body(c)]
        if isinstance(cond, AnyOf):
            return [self._helper([self.body(c) for c in cond.any])]
        if isinstance(cond, Not):
            return [f"not {self._helper([self.body(cond.not_)])}"]
        raise TypeError(f"unknown condition `{cond!r}`")

    def rule(self, spec: RuleSpec) -> str:
        head = "deny" if spec.effect.value == "forbid" else "permit"
        actions = list(dict.fromkeys(a.value for a in spec.actions))
        if len(actions) == 1:
            lines = [f"input.action == {_rego_string(actions[0])}"]
        else:
            lines = [f"input.action in {_rego_set(actions)}"]
        scope = f"data.bundle.scope[{_rego_string(spec.id)}][input.jurisdiction]"
        bounds = _rego_window(
            "w", spec.effective.from_ is not None, spec.effective.until is not None
        )
        # Without bounds to test, the look-up alone is the test. (Binding it to an unused `w`
        # would be the same Rego, but regorus 0.13's RVM does not fail a body on `w := <undefined>`
        # when `w` is never read.)
        lines.extend([f"w := {scope}", *bounds] if bounds else [scope])
        if spec.when is not None:
            lines.extend(self.body(spec.when))
        return f"# {spec.id}\n" + _rego_block(f"{head} contains {_rego_string(spec.id)}", lines)


def _rego_partner(partner: str, window: Window) -> str:
    """One definition of ``partner_authorised``: ``partner`` in one of its windows here."""
    lines = [
        f"input.partner == {_rego_string(partner)}",
        f"some w in data.bundle.partners[{_rego_string(partner)}][input.jurisdiction]",
        *_rego_window("w", window.from_ is not None, window.until is not None),
    ]
    return _rego_block("partner_authorised", lines)


def rego_module(bundle: CompiledBundle) -> str:
    """The bundle's rules as one Rego module (package ``meridian``), in bundle order."""
    writer = _RegoWriter()
    rules = [writer.rule(spec) for spec in bundle.document.rules]
    # A partner's windows all come from its one `effective` window: the same ends are open.
    active = dict.fromkeys(partner for partner, _ in bundle.partner_windows)
    partners = [_rego_partner(p, bundle.document.partners[p].effective) for p in active]
    return "\n".join([_REGO_PRELUDE, *rules, *partners, *writer.helpers])


def rego_data(bundle: CompiledBundle) -> dict[str, Any]:
    """The data document: every rule's jurisdictions and windows, every partner's windows."""
    doc = bundle.document
    scope: dict[str, dict[str, dict[str, int | None]]] = {}
    for spec in doc.rules:
        per = scope.setdefault(spec.id, {})
        for jurisdiction in expand_jurisdictions(doc, spec.jurisdictions):
            start, end = window_epochs(doc, spec.effective, jurisdiction)
            per[jurisdiction] = {"from": start, "until": end}
    partners: dict[str, dict[str, list[dict[str, int | None]]]] = {}
    for (partner, jurisdiction), windows in bundle.partner_windows.items():
        partners.setdefault(partner, {})[jurisdiction] = [
            {"from": w.start, "until": w.end} for w in windows
        ]
    return {"bundle": {"scope": scope, "partners": partners}}


def _rego_input(action: str, facts: Facts) -> dict[str, Any]:
    return {
        "action": action,
        "jurisdiction": facts.jurisdiction,
        "epoch": facts.epoch,
        "type": facts.type,
        "plan": facts.plan,
        "channel": facts.channel,
        "partner": facts.partner,
        "uscc": facts.uscc,
        "org_id": facts.org_id,
    }


def _rego_verdict(result: dict[str, Any]) -> Verdict:
    return result["decision"] == "allow", frozenset(result["ids"])


class RegorusAdapter:
    """regorus's interpreter (``regorus.Engine``): ``set_input`` with a dict, ``eval_rule``."""

    name = "regorus"
    path = "interpreter"

    def __init__(self, bundle: CompiledBundle) -> None:
        import regorus

        self.engine = regorus.Engine()
        self.engine.add_policy("meridian.rego", rego_module(bundle))
        self.engine.add_data(rego_data(bundle))

    def prepare(self, case: Case) -> tuple[dict[str, Any], ...]:
        return tuple(_rego_input(case.action, f) for f in case.facts)

    def run(self, native: tuple[dict[str, Any], ...]) -> list[Any]:
        set_input, eval_rule = self.engine.set_input, self.engine.eval_rule
        out = []
        for one in native:
            set_input(one)
            out.append(eval_rule("data.meridian.result"))
        return out

    def verdict(self, raw: list[dict[str, Any]]) -> Verdict:
        return combine([_rego_verdict(r) for r in raw])


class RegorusRvmAdapter:
    """regorus's compiled form: the module compiled to an RVM program, input as JSON text."""

    name = "regorus"
    path = "rvm"

    def __init__(self, bundle: CompiledBundle) -> None:
        import regorus

        data = json.dumps(rego_data(bundle))
        modules = [("meridian.rego", rego_module(bundle))]
        program = regorus.Program.compile_from_modules(data, modules, ["data.meridian.result"])
        self.vm = regorus.Rvm()
        self.vm.load_program(program)
        self.vm.set_data_json(data)

    def prepare(self, case: Case) -> tuple[str, ...]:
        return tuple(json.dumps(_rego_input(case.action, f)) for f in case.facts)

    def run(self, native: tuple[str, ...]) -> list[Any]:
        set_input, execute, loads = self.vm.set_input_json, self.vm.execute, json.loads
        out = []
        for one in native:
            set_input(one)
            out.append(loads(execute()))
        return out

    def verdict(self, raw: list[dict[str, Any]]) -> Verdict:
        return combine([_rego_verdict(r) for r in raw])


#: Factories of the compared engines other than Meridian, by row name.
ADAPTERS: dict[str, Callable[[CompiledBundle], Any]] = {
    "cedarpy": CedarAdapter,
    "pycasbin": CasbinAdapter,
    "regorus": RegorusAdapter,
    "regorus-rvm": RegorusRvmAdapter,
}
