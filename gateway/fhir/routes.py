"""The FHIR route table: one declaration per interaction (method, path, handler, interaction, SMART
scope letter). Flask's routes and the CapabilityStatement are both generated from it, so what we claim is
what we serve (STYLE.md, 8)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from gateway.fhir import operations, views


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable
    interaction: str  # a CapabilityStatement interaction code, or "operation"
    scope: str  # SMART v2 letter the interaction needs: c r u d s
    level: str = "type"  # "type", "instance" or "system"
    operation: str | None = None


ROUTES: list[Route] = [
    Route("GET", "/<rt>/<rid>", views.read, "read", "r", "instance"),
    Route("GET", "/<rt>/<rid>/_history/<vid>", views.vread, "vread", "r", "instance"),
    Route("GET", "/<rt>/<rid>/_history", views.history_instance, "history-instance", "r", "instance"),
    Route("GET", "/<rt>/_history", views.history_type, "history-type", "s"),
    Route("GET", "/_history", views.history_system, "history-system", "s", "system"),
    Route("GET", "/<rt>", views.search, "search-type", "s"),
    Route("POST", "/<rt>/_search", views.search, "search-type", "s"),
    Route("POST", "/<rt>", views.create, "create", "c"),
    Route("PUT", "/<rt>/<rid>", views.update, "update", "u", "instance"),
    Route("PUT", "/<rt>", views.conditional_update, "update", "u"),
    Route("PATCH", "/<rt>/<rid>", views.patch, "patch", "u", "instance"),
    Route("DELETE", "/<rt>/<rid>", views.delete, "delete", "d", "instance"),
    Route("GET", "/Patient/<rid>/$everything", views.everything, "operation", "r", "instance", "everything"),
    Route("POST", "/<rt>/$validate", operations.validate, "operation", "r", "type", "validate"),
    Route("GET", "/Binary/<rid>", operations.binary_read, "read", "r", "instance"),
]
