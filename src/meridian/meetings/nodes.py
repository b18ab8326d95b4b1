"""The control plane's HTTP client to the region nodes: keys, drop and end orders, links, counters.

:class:`RegionNodes` carries what the live meetings (:mod:`meridian.meetings.live`) decide to
the nodes that run them, each order as a signed grant: a ``key`` grant to the key server of a
meeting's key region (``POST /v1/keys``, the meeting key wrapped to a participant), a ``drop``
grant to a relay (``POST /v1/relay/{meeting}/drop``: some participants, or the whole meeting
when it ends), ``link`` grants for the cascades between regions (``POST …/links``), and an
``admin`` credential to read a node's counters (``GET /v1/stats/{meeting}``).

Fail closed: a key server that is not configured, cannot be reached, refuses or answers
malformed is a :class:`KeyServerError` (the join fails, the rotation pauses the meeting). A
relay that cannot take a drop order is an answer, not an exception: the removal goes on
without it and says so. A node that cannot take its links is logged.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from ..errors import ConfigurationError, KeyServerError, shown
from ..keys.grants import Grant, GrantSigner

__all__ = ["DROP_TIMEOUT_SECONDS", "RegionNodes", "check_nodes"]

log = logging.getLogger("meridian.meetings.nodes")

#: how long a region node has to answer a drop order before the removal goes on without it
DROP_TIMEOUT_SECONDS = 5.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _refusal(response: httpx.Response) -> str:
    """What a region node said when it refused (Meridian's error body), or its status."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"status {response.status_code}"


class RegionNodes:
    """The region nodes by region code (``urls``), and the one HTTP client that reaches them.

    ``urls`` is this object's own copy; a region missing from it has no node configured.
    """

    def __init__(
        self,
        signer: GrantSigner,
        urls: Mapping[str, str],
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.signer = signer
        self.urls = dict(urls)
        self.http = http or httpx.AsyncClient(timeout=10.0)
        #: the admin credential the nodes' counters are read with, and when it was signed
        self._admin: tuple[float, str] | None = None

    def relay_url(self, region: str) -> str:
        """The WebSocket address of ``region``'s relay (its node must be configured)."""
        base = self.urls[region]
        return "ws" + base.removeprefix("http") + "/v1/relay"

    async def wrapped_key(self, grant: Grant, public_key: bytes) -> dict[str, Any]:
        """The meeting key the ``key`` grant names, wrapped by its region's key server to the
        participant's X25519 ``public_key``: the key server's answer (it holds ``wrapped``)."""
        region = grant.dc
        base = self.urls.get(region)
        if base is None:
            raise KeyServerError(f"no key server for region `{region}` is configured")
        body = {"grant": self.signer.sign(grant), "public_key": _b64(public_key)}
        try:
            response = await self.http.post(f"{base}/v1/keys", json=body)
        except httpx.HTTPError as exc:
            raise KeyServerError(f"key server `{region}` is unreachable: {exc}") from exc
        if response.status_code != 200:
            raise KeyServerError(f"key server `{region}` refused: {_refusal(response)}")
        try:
            data = response.json()
            if not isinstance(data, dict) or "wrapped" not in data:
                raise ValueError("no `wrapped` key")
        except ValueError as exc:
            raise KeyServerError(f"key server `{region}` sent a malformed answer: {exc}") from exc
        return data

    async def drop(self, region: str, grant: Grant) -> set[str] | str:
        """Hand ``region``'s relay the ``drop`` grant: the participants it closed, or why it
        could not be told (unreachable, refused, a malformed answer)."""
        url = f"{self.urls[region]}/v1/relay/{quote(grant.meeting, safe='')}/drop"
        try:
            response = await self.http.post(
                url, json={"grant": self.signer.sign(grant)}, timeout=DROP_TIMEOUT_SECONDS
            )
        except httpx.HTTPError as exc:
            return f"region node `{region}` is unreachable: {str(exc) or type(exc).__name__}"
        if response.status_code != 200:
            return f"region node `{region}` refused the drop: {_refusal(response)}"
        try:
            closed = response.json()["dropped"]
            return {str(p) for p in closed}
        except (ValueError, KeyError, TypeError):
            return f"region node `{region}` sent a malformed answer to the drop"

    async def give_links(self, meeting_id: str, grants: Mapping[str, list[Grant]]) -> None:
        """Give each region's node its ``link`` grants for ``meeting_id``. A node that is not
        configured is skipped; one that cannot be reached or refuses is logged."""

        async def one(region: str, links: list[Grant]) -> None:
            base = self.urls.get(region)
            if base is None:
                return
            url = f"{base}/v1/relay/{quote(meeting_id, safe='')}/links"
            signed = [self.signer.sign(grant) for grant in links]
            try:
                response = await self.http.post(
                    url, json={"grants": signed}, timeout=DROP_TIMEOUT_SECONDS
                )
            except httpx.HTTPError as exc:
                log.warning("meeting %s: links to %s: %s", meeting_id, region, exc)
                return
            if response.status_code != 200:
                log.warning(
                    "meeting %s: region node %s refused its links: %s",
                    meeting_id,
                    region,
                    _refusal(response),
                )

        await asyncio.gather(*(one(r, g) for r, g in sorted(grants.items())))

    async def carried(self, meeting_id: str) -> dict[str, dict[str, Any]]:
        """What every region node counted for a meeting: bytes, frames, keys, participants.

        Read from the nodes themselves; a node that does not answer is reported as such, with
        no figures (never as zeros).
        """

        headers = {"Authorization": f"Bearer {self.admin_credential()}"}

        async def one(region: str, base: str) -> tuple[str, dict[str, Any]]:
            try:
                response = await self.http.get(
                    f"{base}/v1/stats/{quote(meeting_id, safe='')}", headers=headers
                )
                response.raise_for_status()
                data: dict[str, Any] = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                return region, {"error": f"region node `{region}` did not answer: {exc}"}
            data.pop("meeting", None)
            data.pop("region", None)
            return region, data

        pairs = await asyncio.gather(*(one(r, u) for r, u in sorted(self.urls.items())))
        return dict(pairs)

    async def statements(self, meeting_id: str) -> dict[str, dict[str, Any]]:
        """Every configured node's signed statement of its counters for a meeting (``GET
        /v1/statement/{meeting}``): ``{"statement", "signature", "key"}`` per region, or
        ``{"error"}`` for a node that did not give one (never a statement made up here)."""
        headers = {"Authorization": f"Bearer {self.admin_credential()}"}

        async def one(region: str, base: str) -> tuple[str, dict[str, Any]]:
            url = f"{base}/v1/statement/{quote(meeting_id, safe='')}"
            try:
                response = await self.http.get(url, headers=headers, timeout=DROP_TIMEOUT_SECONDS)
                response.raise_for_status()
                data = response.json()
                signed = {k: data[k] for k in ("statement", "signature", "key")}
                if not all(isinstance(v, str) for v in signed.values()):
                    raise ValueError("a field is not a string")
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                why = str(exc) or type(exc).__name__
                return region, {"error": f"region node `{region}` gave no statement: {why}"}
            return region, signed

        pairs = await asyncio.gather(*(one(r, u) for r, u in sorted(self.urls.items())))
        return dict(pairs)

    async def node_keys(self) -> dict[str, str]:
        """Each configured node's public signing key (``GET /v1/node/key``, public), by region;
        a node that does not answer is left out (a receipt it signed then does not verify)."""

        async def one(region: str, base: str) -> tuple[str, str | None]:
            try:
                response = await self.http.get(f"{base}/v1/node/key", timeout=DROP_TIMEOUT_SECONDS)
                response.raise_for_status()
                key = response.json()["key"]
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                return region, None
            return region, key if isinstance(key, str) else None

        pairs = await asyncio.gather(*(one(r, u) for r, u in sorted(self.urls.items())))
        return {region: key for region, key in pairs if key is not None}

    def admin_credential(self) -> str:
        """The control plane's ``admin`` credential for the nodes' counters, re-signed when half
        its lifetime has passed."""
        now = time.monotonic()
        if self._admin is None or now - self._admin[0] > self.signer.seconds / 2:
            self._admin = (now, self.signer.admin())
        return self._admin[1]

    async def aclose(self) -> None:
        await self.http.aclose()


def check_nodes(node_urls: dict[str, str], codes: frozenset[str]) -> None:
    """Refuse node URLs for regions the bundle does not list (a typo must not go unnoticed)."""
    for region in node_urls:
        if region not in codes:
            raise ConfigurationError(
                f"node url given for `{shown(region)}`, which is not a data-centre region"
            )
