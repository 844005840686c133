"""The client's address when proxies stand in front of the gateway.

Per-address rate limits are only as good as the address they count. The gateway runs without uvicorn's
proxy-header handling (`--no-proxy-headers`) and decides here: the TCP peer, unless the peer is one of
the configured trusted proxies (`MIF_GATEWAY_TRUSTED_PROXIES`, none by default); then the rightmost
`X-Forwarded-For` entry that is not itself a trusted proxy. Whatever a client writes into the header
stands left of what its proxy appended, so rotating it changes nothing; this holds whether the ingress
replaces the header or appends to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

Network = IPv4Network | IPv6Network


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    """CIDRs or single addresses (`10.0.0.0/8`, `192.0.2.7`); a malformed one is a configuration error."""
    return tuple(ip_network(value.strip(), strict=False) for value in values)


def _address(text: str) -> IPv4Address | IPv6Address | None:
    value = text.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "192.0.2.7:5555"
        value = value.split(":", 1)[0]
    try:
        return ip_address(value)
    except ValueError:
        return None


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The address to count and to forward as the caller's."""
    if peer is None:
        return "unknown"
    peer_address = _address(peer)
    if not trusted or peer_address is None or not any(peer_address in net for net in trusted):
        return peer
    nearest = peer  # the last hop known to be a proxy of ours
    for entry in reversed((forwarded_for or "").split(",")):
        address = _address(entry)
        if address is None:
            return nearest  # our proxy wrote something unreadable: count the proxy, not a client's choice
        if not any(address in net for net in trusted):
            return str(address)
        nearest = str(address)
    return nearest
