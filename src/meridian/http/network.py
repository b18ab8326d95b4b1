"""The client's address: the socket peer, or ``X-Forwarded-For`` when the peer is a trusted proxy.

The chain is read from the right: each hop appended the address it saw. Addresses are skipped
while they belong to trusted proxies; the first one that does not is the client. A malformed
entry stops the walk at the last address known good, so a forged header can never produce an
address a trusted proxy did not see.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

__all__ = ["TrustedProxies", "client_ip", "forwarded_https"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The networks whose ``X-Forwarded-For`` is believed."""

    def __init__(self, networks: Sequence[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in networks
        )

    def __contains__(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: TrustedProxies) -> str | None:
    """The client address for a request from ``peer`` carrying ``forwarded_for``."""
    if peer is None or not forwarded_for or peer not in trusted:
        return peer
    current = peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return current
        current = hop
        if hop not in trusted:
            return hop
    return current


def forwarded_https(
    scheme: str, peer: str | None, forwarded_proto: str | None, trusted: TrustedProxies
) -> bool:
    """Whether the client reached us over HTTPS: directly, or through a trusted TLS proxy.

    ``X-Forwarded-Proto`` counts only from a trusted proxy; its first entry is the scheme the
    client-facing proxy saw. From any other peer the header is ignored.
    """
    if scheme in ("https", "wss"):
        return True
    if peer is None or not forwarded_proto or peer not in trusted:
        return False
    return forwarded_proto.split(",", 1)[0].strip().lower() == "https"
