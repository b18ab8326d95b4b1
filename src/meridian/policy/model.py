"""The policy bundle document: strict, frozen pydantic models, and its JSON Schema.

A bundle is YAML. Its shape (every model forbids unknown keys)::

    bundle: meridian-default        # name
    version: "2020.12"
    jurisdictions: {CN: {zone: Asia/Shanghai}, ...}   # the IANA zone of each named jurisdiction
    groups: {everywhere-but-mainland-china: {all_except: [CN]}, EU: {include: [AT, BE, ...]}}
    channels: {direct: {...}, online: {...}, partner: {...}}
    plans: {free: {...}, pro: {...}, ...}
    partners: {bizconf: {name: ..., jurisdictions: [CN], effective: {from: ...}}}
    location: {purchase: {signals: [country, ip], resolve: strictest}, ...}
    uscc: {pilot_divisions: ["350100"]}
    datacentres: {US: {name: ..., jurisdiction: US, coordinates: [37.3, -121.9], capacity: 50000,
                       group: americas}, ...}
    routing: {defaults: [{hosts: [CN], regions: {include: [CN]}}, ...], opt_in: [CN],
              notices: {CN: ...}}
    rules: [{id, description, message, effect, actions, jurisdictions, when, effective,
             obligations}, ...]

Conditions are data, never code: ``{attribute: subject.plan, in: [free]}``,
``{partner_authorised: true}``, and ``all`` / ``any`` / ``not`` over them.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from ..geography.evidence import Signal
from .request import Action

__all__ = [
    "AllOf",
    "AnyOf",
    "Attribute",
    "AttributeIn",
    "Bundle",
    "Channel",
    "Condition",
    "DataCentre",
    "Effect",
    "GroupSpec",
    "JurisdictionInfo",
    "LocationRule",
    "Not",
    "PartnerAuthorised",
    "PartnerSpec",
    "Plan",
    "RegionSet",
    "Resolve",
    "Routing",
    "RoutingDefault",
    "RuleSpec",
    "UsccSettings",
    "Window",
    "bundle_json_schema",
]

_ID = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_id_re = re.compile(_ID)
_group_re = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{1,62}$")


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Effect(StrEnum):
    PERMIT = "permit"
    FORBID = "forbid"


class Resolve(StrEnum):
    """How several location signals combine into the jurisdictions a subject is judged under."""

    #: the subject is in every jurisdiction any counting signal names; it must pass all of them
    STRICTEST = "strictest"
    #: the first counting signal that names a country decides
    FIRST = "first"


class Attribute(StrEnum):
    """The request facts a condition may test."""

    SUBJECT_TYPE = "subject.type"
    SUBJECT_PLAN = "subject.plan"
    SUBJECT_USCC = "subject.uscc"  # absent, valid, pilot or invalid
    RESOURCE_CHANNEL = "resource.channel"  # a channel id, or "none"
    RESOURCE_PARTNER = "resource.partner"  # a partner id, or "none"


class AttributeIn(_Doc):
    """True when the attribute's value is one of ``in``."""

    attribute: Attribute
    in_: tuple[str, ...] = Field(alias="in", min_length=1)


class PartnerAuthorised(_Doc):
    """True when the request's partner is authorised in the jurisdiction at the instant (or not)."""

    partner_authorised: bool


class AllOf(_Doc):
    all: tuple[Condition, ...]


class AnyOf(_Doc):
    any: tuple[Condition, ...]


class Not(_Doc):
    not_: Condition = Field(alias="not")


def _condition_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("attribute", "partner_authorised", "all", "any", "not"):
            if key in value:
                return key
        return None
    if isinstance(value, BaseModel):
        return {
            AttributeIn: "attribute",
            PartnerAuthorised: "partner_authorised",
            AllOf: "all",
            AnyOf: "any",
            Not: "not",
        }.get(type(value))
    return None


Condition = Annotated[
    Annotated[AttributeIn, Tag("attribute")]
    | Annotated[PartnerAuthorised, Tag("partner_authorised")]
    | Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[Not, Tag("not")],
    Discriminator(
        _condition_kind,
        custom_error_type="condition",
        custom_error_message=(
            "a condition needs one of `attribute`, `partner_authorised`, `all`, `any`, `not`"
        ),
    ),
]


class Window(_Doc):
    """An effective window ``[from, until)``, in the local time of each jurisdiction it covers.

    A bare date means local midnight. A time must be local (no offset): the zone comes from the
    jurisdiction.
    """

    from_: date | datetime | None = Field(default=None, alias="from")
    until: date | datetime | None = None
    approximate: bool = False
    note: str | None = None

    @field_validator("from_", "until")
    @classmethod
    def _local(cls, value: date | datetime | None) -> date | datetime | None:
        if isinstance(value, datetime) and value.tzinfo is not None:
            raise ValueError("use local time without an offset: the jurisdiction gives the zone")
        return value


class JurisdictionInfo(_Doc):
    zone: str
    name: str | None = None


class GroupSpec(_Doc):
    """A named set of jurisdictions: listed ones, or all but the listed ones."""

    include: tuple[str, ...] = ()
    all_except: tuple[str, ...] | None = None
    description: str | None = None


class Channel(_Doc):
    name: str
    description: str | None = None


class Plan(_Doc):
    name: str
    paid: bool
    may_host: bool = True
    max_participants: int = Field(ge=1)
    meeting_minutes: int | None = Field(default=None, ge=1)


class PartnerSpec(_Doc):
    name: str
    jurisdictions: tuple[str, ...] = Field(min_length=1)
    effective: Window = Window()
    status: Literal["active", "suspended"] = "active"
    contact: str | None = None
    description: str | None = None


class LocationRule(_Doc):
    signals: tuple[Signal, ...] = Field(min_length=1)
    resolve: Resolve


class UsccSettings(_Doc):
    pilot_divisions: tuple[Annotated[str, Field(pattern=r"^[0-9]{2,6}$")], ...] = ()


class DataCentre(_Doc):
    """One data-centre region: where it is, whose law it sits under, and how many it can carry."""

    name: str
    jurisdiction: str
    #: latitude and longitude in degrees, of the metro area the region serves from
    coordinates: tuple[
        Annotated[float, Field(ge=-90, le=90)], Annotated[float, Field(ge=-180, le=180)]
    ]
    capacity: int = Field(ge=1, description="participants it can carry at once")
    #: placement prefers a data centre the meeting already uses within the same group
    group: str = Field(pattern=_ID)
    #: the day it opened (UTC); before it, placement does not use it
    opened: date | None = None


class RegionSet(_Doc):
    """A set of data-centre regions: the listed ones, or all but the listed ones."""

    include: tuple[str, ...] = ()
    all_except: tuple[str, ...] | None = None


class RoutingDefault(_Doc):
    """The regions a host in one of ``hosts`` (jurisdictions or groups) gets by default."""

    hosts: tuple[str, ...] = Field(min_length=1)
    regions: RegionSet


class Routing(_Doc):
    """How meetings are placed: default region sets, opt-in regions and notices."""

    #: the first entry whose ``hosts`` names the host's jurisdiction gives its default set
    defaults: tuple[RoutingDefault, ...] = Field(min_length=1)
    #: regions a host outside the region's own jurisdiction may use only by explicit opt-in
    opt_in: tuple[str, ...] = ()
    #: what a participant outside a region's jurisdiction is told before connecting to it
    notices: dict[str, str] = {}


class RuleSpec(_Doc):
    id: str = Field(pattern=_ID)
    description: str
    message: str
    effect: Effect
    actions: tuple[Action, ...] = Field(min_length=1)
    jurisdictions: tuple[str, ...] = Field(min_length=1)
    when: Condition | None = None
    effective: Window = Window()
    obligations: tuple[Annotated[str, Field(pattern=_ID)], ...] = ()


class Bundle(_Doc):
    """A whole policy bundle document, before compilation."""

    bundle: str = Field(pattern=_ID, description="the bundle's name")
    version: str = Field(min_length=1, max_length=64)
    description: str | None = None
    jurisdictions: dict[str, JurisdictionInfo] = {}
    groups: dict[str, GroupSpec] = {}
    channels: dict[str, Channel]
    plans: dict[str, Plan]
    partners: dict[str, PartnerSpec] = {}
    location: dict[Action, LocationRule]
    uscc: UsccSettings = UsccSettings()
    datacentres: dict[str, DataCentre] = {}
    routing: Routing | None = None
    rules: tuple[RuleSpec, ...]

    @field_validator("channels", "plans", "partners")
    @classmethod
    def _ids(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not _id_re.match(key) or key == "none":
                raise ValueError(f"invalid id `{key}`: use lowercase letters, digits, `-` and `_`")
        return value

    @field_validator("groups")
    @classmethod
    def _group_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not _group_re.match(key):
                raise ValueError(f"invalid group name `{key}`: use letters, digits, `-` and `_`")
        return value


for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()


def bundle_json_schema() -> dict[str, Any]:
    """The JSON Schema of a bundle document (what ``meridian policy schema`` prints)."""
    schema = Bundle.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Meridian policy bundle"
    return schema
