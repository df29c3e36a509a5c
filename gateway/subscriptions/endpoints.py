"""Where a rest-hook may post. Any signed-in user can create a Subscription, so its endpoint must not
turn the server into a proxy into its own network (SSRF): loopback, private, link-local and other
non-public addresses are refused, at creation and again before each delivery (DNS can change), unless
PHR_SUBSCRIPTION_ALLOW_PRIVATE_ENDPOINTS=1 (development and the test suite)."""
from __future__ import annotations

import ipaddress
import os
import socket
from urllib.parse import urlsplit


def private_endpoints_allowed() -> bool:
    return os.environ.get("PHR_SUBSCRIPTION_ALLOW_PRIVATE_ENDPOINTS") == "1"


def endpoint_problem(url: str) -> str | None:
    """Why `url` may not receive notifications, or None when it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "the endpoint must be an http(s) URL"
    if private_endpoints_allowed():
        return None
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return f"the endpoint's host {parts.hostname!r} does not resolve"
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global:
            return f"the endpoint's host resolves to a non-public address ({address})"
    return None
