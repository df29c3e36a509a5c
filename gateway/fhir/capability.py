"""The CapabilityStatement, generated from the route table and the search-parameter registry
(hl7.org/fhir/R4/capabilitystatement.html)."""
from __future__ import annotations

from typing import Any

from gateway.fhir.params import RESOURCE_TYPES, params_for
from gateway.fhir.routes import ROUTES
from gateway.services.fhir_write import READ_ONLY

SOFTWARE = {"name": "PHR FHIR Gateway", "version": "0.1.0"}
_WRITE = {"create", "update", "patch", "delete"}


def _interactions(rt: str) -> list[dict[str, str]]:
    codes = []
    for route in ROUTES:
        specific = route.path.startswith(f"/{rt}/") or route.path == f"/{rt}"
        generic = route.path.startswith("/<rt>")
        if route.interaction == "operation" or not (specific or generic):
            continue
        if generic and rt == "Binary":
            continue
        if route.interaction in _WRITE and rt in READ_ONLY:
            continue
        if route.interaction not in codes:
            codes.append(route.interaction)
    return [{"code": c} for c in codes]


def _resource(rt: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": rt, "interaction": _interactions(rt)}
    if rt == "Binary":
        return entry
    entry.update(versioning="versioned", readHistory=True, updateCreate=rt not in READ_ONLY,
                 conditionalCreate=rt not in READ_ONLY, conditionalUpdate=rt not in READ_ONLY,
                 conditionalDelete="not-supported")
    params = params_for(rt)
    refs = sorted(code for code, p in params.items() if p.type == "reference")
    entry["searchInclude"] = ["*"] + [f"{rt}:{c}" for c in refs]
    entry["searchRevInclude"] = sorted(f"{other}:{c}" for other in RESOURCE_TYPES
                                       for c, p in params_for(other).items()
                                       if p.type == "reference" and (not p.targets or rt in p.targets))
    entry["searchParam"] = [
        {"name": code, "definition": p.url, "type": p.type, **({"documentation": p.description[:200]}
                                                              if p.description.strip() else {})}
        for code, p in sorted(params.items())
    ]
    ops = dict.fromkeys(r.operation for r in ROUTES if r.interaction == "operation"
                        and (r.path.startswith(f"/{rt}/") or r.path.startswith("/<rt>")))
    if ops:
        entry["operation"] = [{"name": name, "definition": _operation_definition(name)} for name in ops]
    return entry


def _subscription(base: str) -> dict[str, Any]:
    """R4 Subscriptions (rest-hook, websocket): the routes declared for them, their search parameters,
    and the websocket URL (R4 extension capabilitystatement-websocket)."""
    from gateway.subscriptions.service import SEARCH_PARAMS

    codes = dict.fromkeys(r.interaction for r in ROUTES if r.path.startswith("/Subscription"))
    ws = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/ws"
    return {"type": "Subscription", "interaction": [{"code": c} for c in codes], "versioning": "versioned",
            "searchParam": [{"name": n, "type": t, "definition": u} for n, (t, u) in SEARCH_PARAMS.items()],
            "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket",
                           "valueUri": ws}]}


def _operation_definition(name: str) -> str:
    return {"everything": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
            "validate": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
            "export": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
            "patient-export": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
            "group-export": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"}.get(
        name, f"http://hl7.org/fhir/OperationDefinition/{name}")


def capability_statement(base: str, security: dict[str, Any] | None = None, date: str = "2026-11-24") -> dict[str, Any]:
    rest: dict[str, Any] = {"mode": "server"}
    if security:
        rest["security"] = security
    rest["resource"] = [_resource(rt) for rt in sorted(RESOURCE_TYPES) + ["Binary"]] + [_subscription(base)]
    system = dict.fromkeys(r.interaction for r in ROUTES
                           if r.level == "system" and r.interaction not in ("operation", "bulk-status"))
    rest["interaction"] = [{"code": code} for code in system]
    rest["operation"] = [{"name": name, "definition": _operation_definition(name)} for name in dict.fromkeys(
        r.operation for r in ROUTES if r.interaction == "operation" and r.level == "system")]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "PHR FHIR Gateway",
        "kind": "instance",
        "software": SOFTWARE,
        "implementation": {"description": "PHR FHIR Gateway: a patient-owned record with a FHIR R4 face", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [rest],
    }
