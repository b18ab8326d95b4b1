"""The decision request: the public contract, parsed once into a frozen value.

Wire form (fields may be added, never renamed)::

    {"action": "purchase",
     "at": "2020-08-23T09:00:00+08:00",
     "subject": {"type": "organization", "country": "CN", "ip": "114.114.114.114",
                 "plan": "pro", "org_id": "91110000600037341L"},
     "resource": {"channel": "partner", "partner": "bizconf"}}

Parsing does every piece of work that depends only on the request (the IP address, the organisation
code's form, the phone number's country, the instant as epoch seconds) so that deciding does not.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal

import phonenumbers
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from ..errors import InputError, RequestError, format_validation_error, shown
from ..geography.ipgeo import IpAddress, parse_ip
from ..geography.jurisdictions import ALL_JURISDICTIONS, check_jurisdiction
from ..geography.uscc import OrgForm, normalise_uscc
from ..geography.uscc import org_form as uscc_org_form

__all__ = [
    "ACTIONS",
    "Action",
    "OrgForm",
    "Request",
    "Resource",
    "Subject",
    "epoch_seconds",
    "parse_request",
    "parse_request_json",
]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def epoch_seconds(at: datetime) -> int:
    """Whole seconds since the epoch, floored, computed exactly (no float rounding)."""
    return (at - _EPOCH) // _SECOND


class Action(StrEnum):
    """What a subject asks to do."""

    REGISTER = "register"
    PURCHASE = "purchase"
    RENEW = "renew"
    HOST = "host"
    JOIN = "join"


ACTIONS: tuple[str, ...] = tuple(a.value for a in Action)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class _SubjectWire(_Wire):
    type: Literal["individual", "organization"]
    id: str | None = Field(default=None, max_length=200)
    country: str | None = None
    ip: str | None = None
    plan: str | None = Field(default=None, max_length=100)
    org_id: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=40)


class _ResourceWire(_Wire):
    channel: str | None = Field(default=None, max_length=100)
    partner: str | None = Field(default=None, max_length=100)


class _RequestWire(_Wire):
    action: Action
    at: AwareDatetime | None = None
    subject: _SubjectWire
    resource: _ResourceWire = _ResourceWire()


@dataclass(frozen=True, slots=True)
class Subject:
    """Who asks, with every location signal they carry."""

    type: str
    id: str | None = None
    country: str | None = None
    ip: IpAddress | None = None
    plan: str | None = None
    org_id: str | None = None
    org_form: OrgForm = OrgForm.ABSENT
    org_country: str | None = None
    phone: str | None = None
    phone_country: str | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    """What the action is about: for commerce, the sales channel and partner."""

    channel: str | None = None
    partner: str | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed decision request. ``at`` ``None`` means "now" on the engine's clock."""

    #: one of :data:`ACTIONS`; a plain ``str``, because an enum member's ``__hash__`` is Python
    #: code and the action is a dictionary key on every decision
    action: str
    subject: Subject
    resource: Resource = Resource()
    at: datetime | None = None
    #: ``at`` as whole epoch seconds, floored. Rule boundaries are whole seconds, and for a whole
    #: number ``b``, ``t < b`` exactly when ``floor(t) < b``, so nothing is lost.
    epoch: int | None = None


def _phone_country(text: str) -> str:
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise RequestError(
            f"request: invalid phone number `{shown(text)}`: expected international form such as `+8610xxxxxxxx`"
        ) from None
    region = phonenumbers.region_code_for_number(number)
    if not region or region == "001":
        raise RequestError(f"request: phone number `{shown(text)}` belongs to no country")
    return str(region)


# -- the plain-request path ------------------------------------------------------------------
#
# Most requests are plain: known keys, strings without surrounding blanks, an instant in the
# usual ISO 8601 form. For those, checking by hand, with the pure look-ups (IP, instant,
# organisation code, phone) memoised, costs well under half of the pydantic validation
# (bench/api.py: parsing was the largest share of a decision served over HTTP).
# INVARIANT: `_parse_plain` returns either exactly what the validated path returns or `None`,
# and `None` sends the request down the validated path, which gives the error message; it never
# accepts what that path refuses (tests/policy/test_request_fuzz.py checks both on every input).

_REQUEST_KEYS = frozenset({"action", "at", "subject", "resource"})
_SUBJECT_LIMITS = {"id": 200, "country": None, "ip": None, "plan": 100, "org_id": 100, "phone": 40}
_SUBJECT_KEYS = frozenset({"type", *_SUBJECT_LIMITS})
_RESOURCE_KEYS = frozenset({"channel", "partner"})
_ACTION_SET = frozenset(ACTIONS)
_TYPES = frozenset({"individual", "organization"})
_PLAIN_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
_cached_ip = lru_cache(maxsize=1 << 16)(parse_ip)
_cached_phone = lru_cache(maxsize=1 << 12)(lambda text: _phone_country(text))


@lru_cache(maxsize=1 << 12)
def _plain_instant(text: str) -> tuple[datetime, int] | None:
    if _PLAIN_INSTANT.fullmatch(text) is None:
        return None
    try:
        at = datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return at, epoch_seconds(at)


@lru_cache(maxsize=1 << 14)
def _org(text: str) -> tuple[str, OrgForm, str | None]:
    code = normalise_uscc(text)
    form = uscc_org_form(code)
    # A code in USCC form claims a mainland China registration, valid check or not.
    return code, form, None if form is OrgForm.MALFORMED else "CN"


def _plain_text(value: object, limit: int | None) -> bool:
    return (
        type(value) is str
        and value != ""
        and value.strip() == value
        and (limit is None or len(value) <= limit)
    )


def _parse_plain(data: dict[str, Any]) -> Request | None:
    if not _REQUEST_KEYS.issuperset(data):
        return None
    action = data.get("action")
    subject = data.get("subject")
    if type(action) is not str or action not in _ACTION_SET or type(subject) is not dict:
        return None
    if not _SUBJECT_KEYS.issuperset(subject):
        return None
    kind = subject.get("type")
    if type(kind) is not str or kind not in _TYPES:
        return None
    for key, limit in _SUBJECT_LIMITS.items():
        value = subject.get(key)
        if value is not None and not _plain_text(value, limit):
            return None
    country = subject.get("country")
    if country is not None and country not in ALL_JURISDICTIONS:
        return None
    resource = data.get("resource", _NO_RESOURCE)
    if resource is not _NO_RESOURCE:
        if type(resource) is not dict or not _RESOURCE_KEYS.issuperset(resource):
            return None
        for value in resource.values():
            if value is not None and not _plain_text(value, 100):
                return None
    try:
        ip_text = subject.get("ip")
        ip = None if ip_text is None else _cached_ip(ip_text)
        phone = subject.get("phone")
        phone_country = None if phone is None else _cached_phone(phone)
    except InputError:
        return None
    at = epoch = None
    when = data.get("at")
    if when is not None:
        instant = _plain_instant(when) if type(when) is str else None
        if instant is None:
            return None
        at, epoch = instant
    org_id = org_country = None
    org_form = OrgForm.ABSENT
    raw_org = subject.get("org_id")
    if raw_org is not None:
        org_id, org_form, org_country = _org(raw_org)
    return Request(
        action=action,
        at=at,
        epoch=epoch,
        subject=Subject(
            type=kind,
            id=subject.get("id"),
            country=country,
            ip=ip,
            plan=subject.get("plan"),
            org_id=org_id,
            org_form=org_form,
            org_country=org_country,
            phone=phone,
            phone_country=phone_country,
        ),
        resource=_NO_RESOURCE_VALUE
        if resource is _NO_RESOURCE
        else Resource(channel=resource.get("channel"), partner=resource.get("partner")),
    )


_NO_RESOURCE: Any = object()
_NO_RESOURCE_VALUE = Resource()


def parse_request(data: Any) -> Request:
    """Validate a request in wire form (a mapping) and return the frozen :class:`Request`.

    Raises :class:`RequestError` with one line naming the offending field and input.
    """
    if not isinstance(data, dict):
        raise RequestError(
            f"request: expected a JSON object, got `{shown(json.dumps(data, default=str))}`"
        )
    fast = _parse_plain(data)
    if fast is not None:
        return fast
    try:
        wire = _RequestWire.model_validate(data)
    except ValidationError as exc:
        raise RequestError(format_validation_error(exc)) from None
    s = wire.subject
    try:
        country = None if s.country is None else check_jurisdiction(s.country)
        ip = None if s.ip is None else parse_ip(s.ip)
    except InputError as exc:
        raise RequestError(f"request: {exc.message}") from None
    org_id = org_form = org_country = None
    if s.org_id:
        org_id = normalise_uscc(s.org_id)
        org_form = uscc_org_form(org_id)
        # A code in USCC form claims a mainland China registration, valid check or not; the CN
        # rules then judge it. Any other number implies no country.
        org_country = None if org_form is OrgForm.MALFORMED else "CN"
    phone_country = None if not s.phone else _phone_country(s.phone)
    at = epoch = None
    if wire.at is not None:
        try:
            at = wire.at.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            raise RequestError(
                f"request: `at` is `{shown(wire.at.isoformat())}`: out of range once converted to UTC"
            ) from None
        epoch = epoch_seconds(at)
    return Request(
        action=wire.action.value,
        at=at,
        epoch=epoch,
        subject=Subject(
            type=s.type,
            id=s.id,
            country=country,
            ip=ip,
            plan=s.plan,
            org_id=org_id,
            org_form=org_form or OrgForm.ABSENT,
            org_country=org_country,
            phone=s.phone or None,
            phone_country=phone_country,
        ),
        resource=Resource(channel=wire.resource.channel, partner=wire.resource.partner),
    )


def parse_request_json(text: str | bytes) -> Request:
    """Parse one request from JSON text (UTF-8 when given bytes)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestError(
                f"request: not utf-8 text: byte `{text[exc.start : exc.start + 1]!r}` at offset {exc.start}"
            ) from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise RequestError("request: malformed json: nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise RequestError(
            f"request: malformed json: {exc.msg.lower()} at line {exc.lineno} column {exc.colno}, near `{shown(exc.doc[max(0, exc.pos - 10) : exc.pos + 10].strip() or exc.doc[:20])}`"
        ) from None
    return parse_request(data)
