"""Reading a bundle: YAML with line numbers, strict validation, and cross-checks.

Every problem is reported as ``file:line: message``: pydantic's field errors are mapped back to the
YAML node they came from, and the cross-checks (jurisdiction codes, groups, zones, vocabularies of
conditions) point at the value they reject. Every problem is reported in one pass: when the
document does not match the schema, the jurisdiction codes are still checked on what was read.

A bundle is untrusted input (``PUT /v1/policy`` takes one from the network), so before anything
is built from it the text is bounded (:data:`MAX_BUNDLE_BYTES`) and its YAML event stream —
linear in the text, never expanded — is screened: anchors and aliases are refused (an alias
bomb of a few hundred bytes expands to billions of nodes; a self-referencing alias builds a
cycle) and nesting is bounded (:data:`MAX_DEPTH`), each problem at its line. A date that is not
in the calendar (``2020-02-30``) is kept as text for the schema to refuse at its line.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import ValidationError

from ..errors import BundleError, BundleProblem, InputError, NotFoundError, shown
from ..geography.jurisdictions import ALL_JURISDICTIONS, UNKNOWN, check_jurisdiction
from .model import AllOf, AnyOf, Attribute, AttributeIn, Bundle, Condition, Not, Window

__all__ = [
    "BUILTIN_BUNDLES",
    "MAX_BUNDLE_BYTES",
    "MAX_DEPTH",
    "LoadedBundle",
    "builtin_bundle_path",
    "default_bundle_path",
    "load_bundle",
    "load_bundle_text",
    "read_bundle_file",
]

#: the largest bundle accepted, in bytes of UTF-8 (the built-in one is about 12 KB)
MAX_BUNDLE_BYTES = 1 << 20
#: the deepest nesting of mappings and lists accepted (the schema itself needs about ten)
MAX_DEPTH = 32
#: the members pydantic names after a field of a union type (``Window``'s ``date | datetime``)
_UNION_MEMBERS = ("date", "datetime")
#: the most screening problems listed before the rest are summed up in one
_MAX_LISTED = 50

BUILTIN_GROUPS = {"everywhere": "every ISO 3166-1 jurisdiction"}
USCC_VALUES = ("absent", "valid", "pilot", "invalid")
SUBJECT_TYPES = ("individual", "organization")


@dataclass(frozen=True)
class LoadedBundle:
    """A validated bundle document with its source and content digest."""

    document: Bundle
    source: str
    digest: str  # "sha256:<hex>" of the canonical JSON form of the document


class _Loader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's yes/no/on/off booleans: ``NO`` is Norway, not false."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    """A YAML timestamp, or its text when it is not a real instant (``2020-02-30``).

    PyYAML raises a bare ``ValueError`` for such a date; as text it reaches the schema, which
    refuses it at its line like any other bad value.
    """
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except (ValueError, OverflowError):
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


def _screen(text: str, source: str) -> list[BundleProblem]:
    """Anchors, aliases and nesting beyond :data:`MAX_DEPTH`, from the event stream alone.

    Parsing events costs time linear in the text and builds nothing, so this is safe to run on
    any input of bounded size; a YAML syntax error propagates as :class:`yaml.YAMLError`.
    """
    problems: list[BundleProblem] = []
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, yaml.AliasEvent):
            problems.append(
                BundleProblem(
                    f"yaml aliases are not allowed in a bundle: `*{shown(event.anchor)}`: "
                    "write the value out",
                    source,
                    line,
                )
            )
        elif isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            problems.append(
                BundleProblem(
                    f"yaml anchors are not allowed in a bundle: `&{shown(event.anchor)}`: "
                    "write the value out where it is used",
                    source,
                    line,
                )
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                problems.append(
                    BundleProblem(
                        f"the bundle is nested more than {MAX_DEPTH} levels deep", source, line
                    )
                )
                break
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        if len(problems) > _MAX_LISTED:
            problems[_MAX_LISTED:] = [
                BundleProblem(f"more than {_MAX_LISTED} problems: the rest are not listed", source)
            ]
            break
    return problems


def _lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            out[(*path, k)] = key.start_mark.line + 1
            _lines(value, (*path, k), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), out)


def _line_for(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    # pydantic locations carry aliases ("in", "from"); discriminated unions add tag names that do
    # not exist in the document. Walk down as far as the document goes.
    best: int | None = lines.get(())
    path: tuple[Any, ...] = ()
    for part in loc:
        candidate = (*path, part)
        if candidate in lines:
            path = candidate
            best = lines[candidate]
    return best


def _pydantic_message(err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    if kind == "missing":
        return f"missing field `{loc}`"
    if kind == "extra_forbidden":
        return f"unknown field `{loc}`"
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    msg = msg[0].lower() + msg[1:]
    given = err.get("input")
    if isinstance(given, str | int | float) and not isinstance(given, bool):
        return f"`{loc}` is `{given}`: {msg}"
    return f"`{loc}`: {msg}"


def _walk_conditions(
    cond: Condition, path: tuple[Any, ...]
) -> Iterator[tuple[AttributeIn, tuple[Any, ...]]]:
    if isinstance(cond, AttributeIn):
        yield cond, path
    elif isinstance(cond, AllOf):
        for i, c in enumerate(cond.all):
            yield from _walk_conditions(c, (*path, "all", i))
    elif isinstance(cond, AnyOf):
        for i, c in enumerate(cond.any):
            yield from _walk_conditions(c, (*path, "any", i))
    elif isinstance(cond, Not):
        yield from _walk_conditions(cond.not_, (*path, "not"))


def _check(doc: Bundle, lines: dict[tuple[Any, ...], int], source: str) -> list[BundleProblem]:
    problems: list[BundleProblem] = []

    def problem(path: tuple[Any, ...], message: str) -> None:
        problems.append(BundleProblem(message, source, _line_for(lines, path)))

    def code(path: tuple[Any, ...], value: str, *, allow_unknown: bool = False) -> bool:
        try:
            check_jurisdiction(value, allow_unknown=allow_unknown)
        except InputError as exc:
            problem(path, exc.message)
            return False
        return True

    for jur, info in doc.jurisdictions.items():
        code(("jurisdictions", jur), jur)
        try:
            ZoneInfo(info.zone)
        except (ZoneInfoNotFoundError, ValueError):
            problem(
                ("jurisdictions", jur, "zone"),
                f"unknown time zone `{info.zone}`: expected an IANA name such as `Asia/Shanghai`",
            )
    for name, group in doc.groups.items():
        if name in BUILTIN_GROUPS or name == UNKNOWN:
            problem(("groups", name), f"group `{name}` is built in and cannot be redefined")
        elif len(name) == 2 and name.isupper() and name in ALL_JURISDICTIONS:
            problem(
                ("groups", name), f"group name `{name}` is a jurisdiction code: choose another name"
            )
        if group.all_except is not None and group.include:
            problem(("groups", name), f"group `{name}`: give `include` or `all_except`, not both")
        for field in ("include", "all_except"):
            for i, c in enumerate(getattr(group, field) or ()):
                code(("groups", name, field, i), c)

    def needs_zone(path: tuple[Any, ...], jurisdictions: list[str], where: str) -> None:
        for j in jurisdictions:
            if j == UNKNOWN:
                problem(
                    path,
                    f"`unknown` has no local time: {where} cannot have an effective window there",
                )
            elif j not in doc.jurisdictions:
                problem(
                    path,
                    f"jurisdiction `{j}` has no time zone: add it under `jurisdictions` ({where} has an effective window in local time)",
                )

    def expand(path: tuple[Any, ...], names: tuple[str, ...]) -> list[str] | None:
        out: list[str] = []
        for i, name in enumerate(names):
            if name in doc.groups:
                g = doc.groups[name]
                out.extend(g.include if g.all_except is None else ["*"])
            elif name in BUILTIN_GROUPS:
                out.append("*")
            elif name == UNKNOWN:
                out.append(UNKNOWN)
            elif not name.isupper() or len(name) != 2:
                problem(
                    (*path, i),
                    f"unknown jurisdiction or group `{name}`: expected an ISO 3166-1 alpha-2 code or a group under `groups`",
                )
                return None
            elif code((*path, i), name):
                out.append(name)
        return out

    def window(path: tuple[Any, ...], w: Window) -> None:
        if w.from_ is not None and w.until is not None and _as_dt(w.from_) >= _as_dt(w.until):
            problem(
                path,
                f"effective window is empty: `from` `{w.from_}` must come before `until` `{w.until}`",
            )

    vocab = {
        Attribute.SUBJECT_TYPE: SUBJECT_TYPES,
        Attribute.SUBJECT_PLAN: tuple(doc.plans),
        Attribute.SUBJECT_USCC: USCC_VALUES,
        Attribute.RESOURCE_CHANNEL: (*doc.channels, "none"),
        Attribute.RESOURCE_PARTNER: (*doc.partners, "none"),
    }
    for pid, partner in doc.partners.items():
        base: tuple[Any, ...] = ("partners", pid)
        jurs = expand((*base, "jurisdictions"), partner.jurisdictions)
        window((*base, "effective"), partner.effective)
        if jurs is not None and (partner.effective.from_ or partner.effective.until):
            if "*" in jurs:
                problem(
                    (*base, "jurisdictions"),
                    f"partner `{pid}` has an effective window, so its jurisdictions must be listed, not `everywhere`",
                )
            needs_zone((*base, "jurisdictions"), jurs, f"partner `{pid}`")
    seen: dict[str, int] = {}
    for index, rule in enumerate(doc.rules):
        base = ("rules", index)
        if rule.id in seen:
            problem(
                (*base, "id"),
                f"duplicate rule id `{rule.id}`: first used by rule {seen[rule.id] + 1}",
            )
        seen.setdefault(rule.id, index)
        jurs = expand((*base, "jurisdictions"), rule.jurisdictions)
        window((*base, "effective"), rule.effective)
        if jurs is not None and (rule.effective.from_ or rule.effective.until):
            if "*" in jurs:
                problem(
                    (*base, "jurisdictions"),
                    f"rule `{rule.id}` has an effective window, so its jurisdictions must be listed, not a group of all but some",
                )
            needs_zone((*base, "jurisdictions"), jurs, f"rule `{rule.id}`")
        if rule.when is not None:
            for cond, path in _walk_conditions(rule.when, (*base, "when")):
                allowed = vocab[cond.attribute]
                for i, value in enumerate(cond.in_):
                    if value not in allowed:
                        problem(
                            (*path, "in", i),
                            f"unknown value `{value}` for `{cond.attribute.value}`: expected one of {', '.join(allowed)}",
                        )
    _check_routing(doc, problem, code, expand)
    for action in ("register", "purchase", "renew", "host", "join"):
        if action not in {a.value for a in doc.location}:
            problem(
                ("location",), f"no location rule for action `{action}`: say which signals count"
            )
    return problems


def _check_routing(
    doc: Bundle,
    problem: Callable[[tuple[Any, ...], str], None],
    code: Callable[[tuple[Any, ...], str], bool],
    expand: Callable[[tuple[Any, ...], tuple[str, ...]], list[str] | None],
) -> None:
    """Data centres and routing: codes well formed, every region named is listed."""
    if doc.datacentres and doc.routing is None:
        problem(("datacentres",), "data centres are listed but `routing` is missing")
    if doc.routing is not None and not doc.datacentres:
        problem(("routing",), "`routing` needs data centres under `datacentres`")
    for region, dc in doc.datacentres.items():
        if not re.fullmatch(r"[A-Z]{2}", region):
            problem(
                ("datacentres", region),
                f"invalid region code `{region}`: use two capital letters, such as `US`",
            )
        code(("datacentres", region, "jurisdiction"), dc.jurisdiction)

    def regions(path: tuple[Any, ...], names: tuple[str, ...]) -> None:
        for i, name in enumerate(names):
            if name not in doc.datacentres:
                problem(
                    (*path, i),
                    f"unknown data-centre region `{name}`: expected one of {', '.join(doc.datacentres)}",
                )

    if doc.routing is None:
        return
    for i, entry in enumerate(doc.routing.defaults):
        base: tuple[Any, ...] = ("routing", "defaults", i)
        expand((*base, "hosts"), entry.hosts)
        spec = entry.regions
        if spec.all_except is not None and spec.include:
            problem((*base, "regions"), "give `include` or `all_except`, not both")
        regions((*base, "regions", "include"), spec.include)
        regions((*base, "regions", "all_except"), spec.all_except or ())
    regions(("routing", "opt_in"), doc.routing.opt_in)
    regions(("routing", "notices"), tuple(doc.routing.notices))


def _as_dt(value: date | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.combine(value, time())


def _canonical_digest(doc: Bundle) -> str:
    canonical = json.dumps(
        doc.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":")
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def load_bundle_text(text: str, source: str = "<bundle>") -> LoadedBundle:
    """Parse and validate bundle YAML; raise :class:`BundleError` listing every problem."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BUNDLE_BYTES:
        raise BundleError([_too_large(size, source)])
    try:
        screened = _screen(text, source)
        if screened:
            raise BundleError(screened)
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc)
        source_lines = text.splitlines()
        if line is not None and 0 < line <= len(source_lines) and source_lines[line - 1].strip():
            what = f"{what}: `{source_lines[line - 1].strip()[:60]}`"
        raise BundleError([BundleProblem(f"malformed yaml: {what}", source, line)]) from None
    if node is None or not isinstance(data, dict):
        raise BundleError(
            [
                BundleProblem(
                    "a bundle must be a YAML mapping with `bundle`, `version` and `rules`",
                    source,
                    1,
                )
            ]
        )
    lines: dict[tuple[Any, ...], int] = {}
    _lines(node, (), lines)
    try:
        doc = Bundle.model_validate(data)
    except ValidationError as exc:
        problems = []
        seen: set[tuple[Any, ...]] = set()
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            if loc and loc[-1] in _UNION_MEMBERS:
                # `date | datetime` reports each member: one problem per value is enough
                loc = loc[:-1]
                err = {**err, "loc": loc}
            if loc in seen:
                continue
            seen.add(loc)
            problems.append(BundleProblem(_pydantic_message(err), source, _line_for(lines, loc)))
        # The cross-checks need a valid document; the jurisdiction codes do not, so they are
        # checked on what was read and reported with the schema's problems, in one pass.
        flagged = {p.line for p in problems}
        problems += [p for p in _raw_codes(data, lines, source) if p.line not in flagged]
        raise BundleError(problems) from None
    problems = _check(doc, lines, source)
    if problems:
        raise BundleError(problems)
    return LoadedBundle(document=doc, source=source, digest=_canonical_digest(doc))


def _too_large(size: int, source: str) -> BundleProblem:
    return BundleProblem(
        f"the bundle is {size} bytes: a bundle may be at most {MAX_BUNDLE_BYTES} bytes", source
    )


def _raw_codes(
    data: dict[Any, Any], lines: dict[tuple[Any, ...], int], source: str
) -> list[BundleProblem]:
    """The jurisdiction codes and group names of a document the schema refused, checked as
    :func:`_check` checks them, wherever they have the shape the schema expects."""
    problems: list[BundleProblem] = []
    groups = data.get("groups")
    group_names = {k for k in groups if isinstance(k, str)} if isinstance(groups, dict) else set()

    def problem(path: tuple[Any, ...], message: str) -> None:
        problems.append(BundleProblem(message, source, _line_for(lines, path)))

    def code(path: tuple[Any, ...], value: object) -> None:
        if not isinstance(value, str):
            return
        try:
            check_jurisdiction(value)
        except InputError as exc:
            problem(path, exc.message)

    def names(path: tuple[Any, ...], values: object) -> None:
        if not isinstance(values, list):
            return
        for i, name in enumerate(values):
            if not isinstance(name, str) or name in group_names:
                continue
            if name in BUILTIN_GROUPS or name == UNKNOWN:
                continue
            if not name.isupper() or len(name) != 2:
                problem(
                    (*path, i),
                    f"unknown jurisdiction or group `{shown(name)}`: expected an ISO 3166-1 alpha-2 code or a group under `groups`",
                )
            else:
                code((*path, i), name)

    def items(key: str) -> list[tuple[Any, Any]]:
        value = data.get(key)
        if isinstance(value, dict):
            return list(value.items())
        if isinstance(value, list):
            return list(enumerate(value))
        return []

    for jur, _ in items("jurisdictions"):
        code(("jurisdictions", jur), jur)
    for name, group in items("groups"):
        if isinstance(group, dict):
            for field in ("include", "all_except"):
                listed = group.get(field)
                for i, c in enumerate(listed if isinstance(listed, list) else ()):
                    code(("groups", name, field, i), c)
    for key in ("partners", "rules"):
        for name, item in items(key):
            if isinstance(item, dict):
                names((key, name, "jurisdictions"), item.get("jurisdictions"))
    for region, dc in items("datacentres"):
        if isinstance(dc, dict):
            code(("datacentres", region, "jurisdiction"), dc.get("jurisdiction"))
    routing = data.get("routing")
    defaults = routing.get("defaults") if isinstance(routing, dict) else None
    for i, entry in enumerate(defaults if isinstance(defaults, list) else ()):
        if isinstance(entry, dict):
            names(("routing", "defaults", i, "hosts"), entry.get("hosts"))
    return problems


def read_bundle_file(path: Path, source: str | None = None) -> str:
    """The text of the bundle file at ``path``, refused unread when larger than the limit."""
    shown_as = str(path) if source is None else source
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_BUNDLE_BYTES + 1)
            if len(data) > MAX_BUNDLE_BYTES:
                stream.seek(0, 2)
                raise BundleError([_too_large(stream.tell(), shown_as)])
        return data.decode("utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"no bundle file at `{path}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read bundle `{path}`: {exc}") from None


def default_bundle_path() -> Path:
    """Where the built-in bundle (the 2020 mainland China case) lives inside the package."""
    return Path(str(resources.files("meridian") / "bundles" / "default.yaml"))


#: the example bundles shipped in the package, by the name ``builtin:<name>`` gives them
BUILTIN_BUNDLES = ("default", "embargo")


def builtin_bundle_path(name: str) -> Path:
    """The packaged bundle ``name`` (one of :data:`BUILTIN_BUNDLES`)."""
    if name not in BUILTIN_BUNDLES:
        raise NotFoundError(
            f"no built-in bundle `{shown(name)}`: expected one of {', '.join(BUILTIN_BUNDLES)}"
        )
    return Path(str(resources.files("meridian") / "bundles" / f"{name}.yaml"))


def load_bundle(path: str | Path | None = None) -> LoadedBundle:
    """Load a bundle file, or the built-in bundle when ``path`` is ``None``.

    ``builtin:<name>`` names a packaged example bundle (``builtin:embargo``).
    """
    if path is not None and str(path).startswith("builtin:"):
        name = str(path).removeprefix("builtin:")
        return load_bundle_text(read_bundle_file(builtin_bundle_path(name)), f"{name}.yaml")
    target = default_bundle_path() if path is None else Path(path)
    source = str(path) if path is not None else "default.yaml"
    return load_bundle_text(read_bundle_file(target, source), source)
