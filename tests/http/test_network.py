"""The client's IP: X-Forwarded-For is believed only from trusted proxies, read from the right."""

from __future__ import annotations

import pytest

from meridian.http.network import TrustedProxies, client_ip

TRUSTED = TrustedProxies(["10.0.0.0/8", "192.168.0.1"])


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "114.114.114.114", "203.0.113.9"),  # untrusted peer: header ignored
        ("10.1.2.3", "114.114.114.114", "114.114.114.114"),
        ("10.1.2.3", "8.8.8.8, 114.114.114.114", "114.114.114.114"),  # rightmost untrusted
        ("10.1.2.3", "114.114.114.114, 192.168.0.1", "114.114.114.114"),  # skip trusted hops
        ("10.1.2.3", "garbage, 114.114.114.114", "114.114.114.114"),
        ("10.1.2.3", "114.114.114.114, garbage", "10.1.2.3"),  # stop at the last known good
        ("10.1.2.3", "10.9.9.9", "10.9.9.9"),  # all trusted: the leftmost seen
        (None, "8.8.8.8", None),
    ],
)
def test_client_ip(peer, header, expected):
    assert client_ip(peer, header, TRUSTED) == expected
