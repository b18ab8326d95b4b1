"""The HTTP door of a region node: health, metrics, stats, the key server, the relay and its drops.

Nodes speak only to the control plane and to each other: the counters (``/v1/stats``,
``/metrics``) need the control plane's ``admin`` credential (``Authorization: Bearer``), drops
and links are grants the control plane signed, the key server wraps only for ``key`` grants and
a cascade opens only with a ``link`` grant. ``/healthz`` is public and names no meeting.

``create_node_app(config)`` builds everything from its configuration when called: importing
this module opens no store and reads no key. Errors are Meridian's error bodies
(``{"error": {"code", "message"}}``) through the same handler as the control plane's API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict

from ..errors import ConfigurationError, GrantError, shown
from ..geography.regions import REGIONS
from ..http.errors import install_error_handlers
from ..http.network import TrustedProxies
from ..keyfiles import load_or_create_ed25519
from ..keys import KeyServer, MasterKeyStore, from_b64url
from ..keys.grants import GrantVerifier, public_key_from_b64
from ..keys.statements import node_public_key, sign_statement
from .counters import NodeCollector, NodeCounters
from .relay import Relay

__all__ = [
    "NODE_KEY_FILE",
    "DropRequest",
    "DroppedPublic",
    "IssuedKeyPublic",
    "KeyRequest",
    "LinksPublic",
    "LinksRequest",
    "NodeConfig",
    "WrappedKeyPublic",
    "create_node_app",
]

#: the node's own Ed25519 signing key, in its store: it signs the node's statements of what it
#: carried (:mod:`meridian.keys.statements`); the control plane never holds it
NODE_KEY_FILE = "node.key"


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything a region node runs on; it trusts nothing else."""

    region: str
    store: Path
    #: the control plane's Ed25519 public key, raw 32 bytes as unpadded base64url
    control_key: str
    host: str = "127.0.0.1"
    port: int = 9113
    #: networks whose ``X-Forwarded-For`` the relay believes
    trusted_proxies: tuple[str, ...] = ()
    #: base URL of each peer region's node (``http://host:port``), for cascades
    peers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "peers", MappingProxyType(dict(self.peers)))
        if self.region not in REGIONS:
            raise ConfigurationError(
                f"unknown region `{shown(self.region)}`: expected one of {', '.join(REGIONS)}"
            )
        for peer in self.peers:
            if peer not in REGIONS or peer == self.region:
                raise ConfigurationError(
                    f"peer `{shown(peer)}` of region `{self.region}` is not another region"
                )
        try:
            TrustedProxies(self.trusted_proxies)
        except ValueError as exc:
            raise ConfigurationError(f"trusted proxy: {exc}") from exc

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class KeyRequest(BaseModel):
    """The body of ``POST /v1/keys``."""

    model_config = ConfigDict(extra="forbid")

    grant: str
    public_key: str


class WrappedKeyPublic(BaseModel):
    """A meeting key wrapped to one participant, each field unpadded base64url."""

    epk: str
    nonce: str
    ct: str


class IssuedKeyPublic(BaseModel):
    """The answer of ``POST /v1/keys``."""

    region: str
    epoch: int
    wrapped: WrappedKeyPublic


class DropRequest(BaseModel):
    """The body of ``POST /v1/relay/{meeting}/drop``: a ``drop`` grant naming who and why."""

    model_config = ConfigDict(extra="forbid")

    #: empty is refused as a missing grant (401), like a relay's first message without one
    grant: str = ""


class LinksRequest(BaseModel):
    """The body of ``POST /v1/relay/{meeting}/links``: ``link`` grants addressed to this node."""

    model_config = ConfigDict(extra="forbid")

    grants: list[str]


class LinksPublic(BaseModel):
    """The answer of ``POST /v1/relay/{meeting}/links``."""

    region: str
    meeting: str
    #: the peer regions this node holds a good link grant to, for the meeting
    peers: list[str]


class DroppedPublic(BaseModel):
    """The answer of ``POST /v1/relay/{meeting}/drop``."""

    region: str
    meeting: str
    #: the participants whose connection to this relay was closed (the others had none here)
    dropped: list[str]


def create_node_app(config: NodeConfig) -> FastAPI:
    """A region node for ``config``: opens (or creates) its key store now, serves when run."""
    verifier = GrantVerifier(public_key_from_b64(config.control_key), config.region)
    keys = KeyServer(config.region, MasterKeyStore.open(config.store), verifier)
    counters = NodeCounters(config.region, keys_wrapped=keys.keys_issued)
    # made on the first start next to the master key (the store exists by now), read after
    node_key = load_or_create_ed25519(
        config.store / NODE_KEY_FILE, create=True, what="node signing key", setting="--store"
    )
    node_public = node_public_key(node_key)
    relay = Relay(
        config.region,
        verifier,
        counters,
        trusted=TrustedProxies(config.trusted_proxies),
        peers=config.peers,
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(counters))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await relay.close()

    app = FastAPI(
        title=f"Meridian region node {config.region}",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.config = config
    app.state.relay = relay
    app.state.counters = counters
    install_error_handlers(app)

    def control_plane(request: Request) -> None:
        """Only the control plane (or a scraper it gave a credential to) reads the counters."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GrantError(
                "missing credential: send `Authorization: Bearer <admin token>` from the "
                "control plane (`meridian node scrape-token` makes one for a scraper)"
            )
        verifier.verify(token.strip(), typ="admin")

    admin = [Depends(control_plane)]

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Whether the node is up, and which region it is."""
        return {"region": config.region, "status": "ok"}

    @app.get("/metrics", dependencies=admin)
    async def metrics() -> Response:
        """Per-meeting counters in Prometheus text format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/node/key")
    async def node_key_public() -> dict[str, str]:
        """The node's Ed25519 public key (raw, unpadded base64url): what its statements verify
        with. Public, as a checkpoint key is; verifiers should get it by another channel too."""
        return {"region": config.region, "key": node_public}

    @app.get("/v1/statement/{meeting}", dependencies=admin)
    async def meeting_statement(meeting: str) -> dict[str, str]:
        """Every counter this node keeps for the meeting, signed with the node's own key: what
        the control plane records in the log when the meeting ends (docs/audit.md)."""
        figures = counters.stats(meeting).to_dict()
        return {
            "region": config.region,
            "key": node_public,
            **sign_statement(
                node_key,
                region=config.region,
                meeting=meeting,
                counters=figures,
                at=datetime.now(UTC),
            ),
        }

    @app.get("/v1/stats", dependencies=admin)
    async def all_stats() -> dict[str, Any]:
        """Every meeting's counters on this node."""
        return {
            "region": config.region,
            "meetings": [counters.stats(m).to_dict() for m in counters.meetings()],
        }

    @app.get("/v1/stats/{meeting}", dependencies=admin)
    async def meeting_stats(meeting: str) -> dict[str, Any]:
        """One meeting's counters on this node (zeros for a meeting never seen)."""
        return counters.stats(meeting).to_dict()

    @app.post("/v1/keys")
    async def issue_key(body: KeyRequest) -> IssuedKeyPublic:
        """Wrap the meeting key a key grant names to the participant's X25519 public key."""
        # on the event loop, not a worker thread: the counters are the loop's (a wrap is ~0.1 ms)
        issued = keys.issue(body.grant, from_b64url(body.public_key, "public key"))
        return IssuedKeyPublic.model_validate(issued)

    @app.post("/v1/relay/{meeting}/drop")
    async def drop_participants(meeting: str, body: DropRequest) -> DroppedPublic:
        """Disconnect participants of a meeting from this relay and refuse them from now on."""
        grant = verifier.verify(body.grant, typ="drop")
        if grant.meeting != meeting:
            raise GrantError(
                f"grant for meeting `{shown(grant.meeting)}` presented for meeting `{shown(meeting)}`"
            )
        if not grant.drop and not grant.end:
            raise GrantError("invalid grant: it names no participant to drop")
        dropped = await relay.drop(grant)
        return DroppedPublic(region=config.region, meeting=meeting, dropped=dropped)

    @app.post("/v1/relay/{meeting}/links")
    async def give_links(meeting: str, body: LinksRequest) -> LinksPublic:
        """Link grants for a meeting from the control plane: the cascades this node may open."""
        if not body.grants or len(body.grants) > 64:
            raise GrantError('missing grant: send `{"grants": ["<link token>", …]}`')
        peers = relay.add_links(meeting, list(body.grants))
        return LinksPublic(region=config.region, meeting=meeting, peers=peers)

    @app.websocket("/v1/relay")
    async def relay_socket(ws: WebSocket) -> None:
        """A participant's relay connection: a relay grant first, then sealed frames."""
        await relay.serve_participant(ws)

    @app.websocket("/v1/cascade")
    async def cascade_socket(ws: WebSocket) -> None:
        """A peer relay's cascade link for one meeting: its link grant, then frames."""
        await relay.serve_cascade(ws)

    return app
