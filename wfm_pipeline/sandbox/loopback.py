"""Loopback names: which ``Host`` headers the admin routes answer, and which ``--host`` values bind locally.

The admin and truth routes have no authentication. A web page on another origin can still reach a local
port through DNS rebinding (its own name re-resolved to 127.0.0.1), but the browser then sends *that*
name in ``Host``; refusing every ``Host`` that is not a loopback name defeats it. Only literal names
count (``localhost``, ``127.x.y.z``, ``[::1]``): resolving a name would ask the very DNS the attacker
controls.
"""

from __future__ import annotations

import ipaddress
import re

LOOPBACK_NAMES = "localhost, 127.x.y.z or [::1]"  # for messages

# host (bracketed IPv6 literal, or anything without ':' and brackets), then an optional numeric port
_HOST_HEADER = re.compile(r"(?P<host>\[[^\[\]]*\]|[^:\[\]]+)(?::(?P<port>[0-9]{1,5}))?")


def is_loopback_address(host: str) -> bool:
    """True for ``localhost`` (any case), an IPv4 address in 127.0.0.0/8, or ``::1`` (bare or in brackets).

    Used for the ``--host`` bind address, where uvicorn takes IPv6 literals without brackets.
    """
    if host.lower() == "localhost":
        return True
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(literal)
    except ValueError:
        return False  # another name: it may resolve anywhere, so it does not count as loopback
    return address.is_loopback


def is_loopback_host_header(value: str | None) -> bool:
    """True when a ``Host`` header names a loopback host: ``localhost``, ``127.x.y.z`` or ``[::1]``, each
    with or without ``:port``. A missing or malformed header is refused (a bare IPv6 literal such as
    ``::1`` is malformed: RFC 9110 requires the brackets)."""
    if not value:
        return False
    match = _HOST_HEADER.fullmatch(value.strip())
    if match is None:
        return False
    host = match["host"]
    if host.startswith("["):
        try:
            return ipaddress.IPv6Address(host[1:-1]).is_loopback
        except ValueError:
            return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        return False
