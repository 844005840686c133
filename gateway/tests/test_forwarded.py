"""The client address the gateway counts and forwards (issue 19: X-Forwarded-For decided it whenever the
peer was trusted, and the manifests trusted every peer)."""

from __future__ import annotations

from typing import Any

import pytest

from mif_gateway.config import GatewaySettings
from mif_gateway.forwarded import client_address, parse_networks

INGRESS = parse_networks(["10.244.0.0/16", "192.0.2.10"])


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "trusted", "expected"),
    [
        # No proxy trusted (the default): the TCP peer, whatever the header says.
        ("203.0.113.5", "1.2.3.4", (), "203.0.113.5"),
        ("127.0.0.1", "1.2.3.4, 5.6.7.8", (), "127.0.0.1"),
        # A client talking to the gateway directly cannot claim to be a proxy.
        ("203.0.113.5", "1.2.3.4", INGRESS, "203.0.113.5"),
        # Behind the ingress: the entry the ingress appended, not what the client wrote before it.
        ("10.244.3.7", "1.2.3.4, 198.51.100.9", INGRESS, "198.51.100.9"),
        ("10.244.3.7", "198.51.100.9", INGRESS, "198.51.100.9"),
        # Two of our proxies in a row are skipped.
        ("10.244.3.7", "spoofed, 198.51.100.9, 192.0.2.10", INGRESS, "198.51.100.9"),
        # Ports and IPv6 as proxies write them.
        ("10.244.3.7", "[2001:db8::1]:443", INGRESS, "2001:db8::1"),
        ("10.244.3.7", "198.51.100.9:5555", INGRESS, "198.51.100.9"),
        # Our proxy sent no header, or something unreadable: count the proxy, never a client's choice.
        ("10.244.3.7", None, INGRESS, "10.244.3.7"),
        ("10.244.3.7", "1.2.3.4, garbage", INGRESS, "10.244.3.7"),
        (None, "1.2.3.4", INGRESS, "unknown"),
    ],
)
def test_the_rightmost_untrusted_entry_is_the_client(
    peer: str | None, forwarded_for: str | None, trusted: Any, expected: str
) -> None:
    assert client_address(peer, forwarded_for, trusted) == expected


def test_a_malformed_trusted_proxy_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="trusted_proxies"):
        GatewaySettings(trusted_proxies=["10.0.0.0/33"])


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(start_gateway: Any, bearer: Any) -> None:
    """Rotating X-Forwarded-For values does not escape the per-address limits, and services are told
    the real peer."""
    gw = await start_gateway(revocation_enabled=False, rate_anonymous_per_window=3)
    async with gw.client() as c:
        statuses = [
            (await c.get("/api/v1/documents/1/download", headers={"X-Forwarded-For": f"198.51.100.{i}"})).status_code
            for i in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
    gw = await start_gateway(revocation_enabled=False, trusted_proxies=["127.0.0.1"])
    async with gw.client() as c:
        echoed = await c.get(
            "/api/v1/planning", headers={**bearer("responsable"), "X-Forwarded-For": "1.2.3.4, 198.51.100.9"}
        )
        forwarded = dict(echoed.json()["headers"])["x-forwarded-for"]
        assert forwarded == "198.51.100.9"  # the test client is the trusted proxy here
    gw = await start_gateway(revocation_enabled=False)
    async with gw.client() as c:
        echoed = await c.get("/api/v1/planning", headers={**bearer("responsable"), "X-Forwarded-For": "198.51.100.9"})
        assert dict(echoed.json()["headers"])["x-forwarded-for"] == "127.0.0.1"
