"""The FHIR route table: one declaration per interaction (method, path, handler, interaction, SMART
scope letter). Flask's routes and the CapabilityStatement are both generated from it, so what we claim is
what we serve (STYLE.md, 8)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from gateway.fhir import bulk, operations, transaction, views
from gateway.subscriptions import views as subscription_views


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
    # POST [base]: one handler serves both Bundle types (it looks at Bundle.type); each entry then needs
    # the scope of its own interaction.
    Route("POST", "", transaction.batch_or_transaction, "batch", "c", "system"),
    Route("POST", "", transaction.batch_or_transaction, "transaction", "c", "system"),
    Route("POST", "/", transaction.batch_or_transaction, "transaction", "c", "system"),
    Route("GET", "/$export", bulk.export_system, "operation", "r", "system", "export"),
    Route("POST", "/$export", bulk.export_system, "operation", "r", "system", "export"),
    Route("GET", "/Patient/$export", bulk.export_patient, "operation", "r", "type", "patient-export"),
    Route("POST", "/Patient/$export", bulk.export_patient, "operation", "r", "type", "patient-export"),
    Route("GET", "/Group/<gid>/$export", bulk.export_group, "operation", "r", "instance", "group-export"),
    Route("POST", "/Group/<gid>/$export", bulk.export_group, "operation", "r", "instance", "group-export"),
    Route("GET", "/bulk/<job_id>", bulk.status, "bulk-status", "r", "system"),
    Route("DELETE", "/bulk/<job_id>", bulk.cancel, "bulk-status", "r", "system"),
    Route("GET", "/bulk/<job_id>/file/<file_id>", bulk.download, "bulk-status", "r", "system"),
    # R4 Subscriptions: their own table and service (gateway/subscriptions), owned by whoever made them.
    Route("POST", "/Subscription", subscription_views.create, "create", "c"),
    Route("GET", "/Subscription", subscription_views.search, "search-type", "s"),
    Route("GET", "/Subscription/<rid>", subscription_views.read, "read", "r", "instance"),
    Route("PUT", "/Subscription/<rid>", subscription_views.update, "update", "u", "instance"),
    Route("DELETE", "/Subscription/<rid>", subscription_views.delete, "delete", "d", "instance"),
]
