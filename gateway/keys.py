"""The master key: one check for every face (native, GraphQL, LiveQuery, FHIR, OAuth registration).

Compared in constant time, and, when PHR_MASTER_KEY_IPS is set (addresses or networks, comma-separated),
accepted only from those addresses, as Parse Server's masterKeyIps does."""
from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from flask import has_request_context, request


def _allowed(remote: str | None, allow_list: str | None) -> bool:
    if not allow_list:
        return True
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%")[0])
    except ValueError:
        return False
    for item in allow_list.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            if address in ipaddress.ip_network(item, strict=False):
                return True
        except ValueError:
            continue
    return False


def is_master_key(given: str | None, config: Any) -> bool:
    if not given:
        return False
    if not hmac.compare_digest(given.encode(), str(config["MASTER_KEY"]).encode()):
        return False
    remote = request.remote_addr if has_request_context() else None
    return _allowed(remote, config.get("MASTER_KEY_IPS"))
