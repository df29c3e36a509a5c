"""/health and /serverInfo."""
from __future__ import annotations

from gateway.native.context import NativeRequest, require_master
from gateway.native.router import Reply, route


@route("/health", "GET", "POST")
def health(req: NativeRequest) -> Reply:
    """Parse Server's health check."""
    return Reply({"status": "ok"})


@route("/serverInfo", "GET")
def server_info(req: NativeRequest) -> Reply:
    """What this server offers, in Parse's shape (master key)."""
    require_master(req)
    return Reply({
        "parseServerVersion": "9.10.0-compatible (phr-fhir-gateway)",
        "features": {
            "globalConfig": {"create": False, "read": False, "update": False, "delete": False},
            "hooks": {"create": False, "read": False, "update": False, "delete": False},
            "cloudCode": {"jobs": False},
            "logs": {"level": False, "size": False, "order": False, "until": False, "from": False},
            "push": {"immediatePush": False, "scheduledPush": False, "storedPushData": False,
                     "pushAudiences": False, "localization": False},
            "schemas": {"addField": False, "removeField": False, "addClass": False, "removeClass": False,
                        "clearAllDataFromClass": False, "exportClass": False, "editClassLevelPermissions": False,
                        "editPointerPermissions": False},
        },
    })
