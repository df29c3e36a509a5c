"""POST [base] with a batch or transaction Bundle (hl7.org/fhir/R4/http.html#transaction): a thin view over
gateway/services/fhir_bundle.py."""
from __future__ import annotations

from flask import Response

from gateway.extensions import db
from gateway.fhir.auth import current_principal, require
from gateway.fhir.http import base_url, body_json, prefer, respond
from gateway.services.fhir_bundle import BundleService


def batch_or_transaction() -> Response:
    """Run a batch or a transaction; answer its batch-response or transaction-response Bundle."""
    service = BundleService(db.session, require(current_principal()), base_url(),
                            return_pref=prefer().get("return", "representation"))
    result = service.process(body_json())
    db.session.commit()
    return respond(result)
