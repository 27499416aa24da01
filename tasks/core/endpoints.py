"""host:port, IP and DNS-name helpers: the one copy (Go's net.SplitHostPort/JoinHostPort rules).

Example::

    join_host_port("fd00::10", 6443)     # "[fd00::10]:6443"
    split_host_port("[fd00::10]:6443")   # ("fd00::10", "6443")
    split_host_port("lb.example")        # ("lb.example", "")
"""

from __future__ import annotations

import ipaddress
import re

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")


def join_host_port(host: str, port: int | str) -> str:
    """``host:port``, the host in brackets when it holds a colon (IPv6), as Go's JoinHostPort."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host_port(endpoint: str) -> tuple[str, str]:
    """``host[:port]`` (IPv6 in brackets, or a bare IPv6 address) -> (host, port or ``""``).

    Nothing is trimmed and nothing dropped: whatever follows ``]`` other than ``:port`` comes
    back as the port, so a validator sees it (``[::1]x`` -> ``("::1", "x")``).
    """
    if endpoint.startswith("["):
        host, _, rest = endpoint[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else rest
    if endpoint.count(":") == 1:
        host, _, port = endpoint.partition(":")
        return host, port
    return endpoint, ""


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address, or None when ``text`` is not an IP as Go's net.ParseIP reads it (no zone)."""
    if "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_ip(text: str) -> bool:
    return parse_ip(text) is not None


def is_ipv6(text: str) -> bool:
    ip = parse_ip(text)
    return ip is not None and ip.version == 6


def is_unspecified(text: str) -> bool:
    ip = parse_ip(text)
    return ip is not None and ip.is_unspecified


def loopback_for(address: str) -> str:
    """``[::1]`` for an IPv6 address, else ``127.0.0.1`` (a host-side URL's host)."""
    return "[::1]" if is_ipv6(address) else "127.0.0.1"


def is_dns1123_subdomain(name: str) -> bool:
    return 0 < len(name) <= 253 and bool(_DNS1123_SUBDOMAIN.match(name))
