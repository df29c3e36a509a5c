"""The FHIR R4 face at /fhir."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound as RouteNotFound, RequestEntityTooLarge

from gateway.errors import DomainError
from gateway.extensions import db
from gateway.fhir.auth import scoped
from gateway.fhir.capability import capability_statement
from gateway.fhir.http import base_url, respond
from gateway.fhir.outcomes import from_error, outcome
from gateway.fhir.routes import ROUTES
from gateway.services.inputs import refuse_nul

log = logging.getLogger("gateway.fhir")
fhir_bp = Blueprint("fhir", __name__, url_prefix="/fhir")

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Accept, Prefer, If-Match, If-None-Exist, "
                                    "If-None-Match, If-Modified-Since, X-Parse-Session-Token",
    "Access-Control-Expose-Headers": "Location, Content-Location, ETag, Last-Modified",
}


def metadata() -> Response:
    """The CapabilityStatement (no authentication needed)."""
    return respond(capability_statement(base_url(), current_app.config.get("FHIR_SECURITY")))


fhir_bp.add_url_rule("/metadata", "metadata", metadata, methods=["GET"])
for i, route in enumerate(ROUTES):
    fhir_bp.add_url_rule(route.path, f"{route.handler.__name__}_{i}", scoped(route), methods=[route.method])


@fhir_bp.route("/", defaults={"path": ""}, methods=["OPTIONS"])
@fhir_bp.route("/<path:path>", methods=["OPTIONS"])
def preflight(path: str) -> Response:
    """CORS preflight for browser SMART apps."""
    return Response(status=204)


@fhir_bp.before_request
def refuse_nul_in_the_request() -> None:
    """An id or a search value with U+0000 is refused on both databases alike (services.inputs): PostgreSQL's
    text cannot hold it. Form-encoded bodies are searches (POST _search)."""
    texts = [request.path, *(v for pair in request.args.lists() for v in (pair[0], *pair[1]))]
    if request.mimetype == "application/x-www-form-urlencoded":
        texts += [v for pair in request.form.lists() for v in (pair[0], *pair[1])]
    refuse_nul(texts, "The path and search parameters")


@fhir_bp.after_request
def cors(resp: Response) -> Response:
    resp.headers.update(CORS)
    return resp


@fhir_bp.errorhandler(DomainError)
def domain_error(e: DomainError) -> Response:
    db.session.rollback()
    body, status = from_error(e)
    headers = {"WWW-Authenticate": 'Bearer realm="fhir"'} if status == 401 else {}
    return respond(body, status, headers)


@fhir_bp.errorhandler(RequestEntityTooLarge)
def too_large(e) -> Response:
    return respond(outcome("error", "too-costly", "The request body is too large"), 413)


@fhir_bp.errorhandler(HTTPException)
def http_error(e: HTTPException) -> Response:
    db.session.rollback()
    code = {404: "not-found", 405: "not-supported"}.get(e.code, "processing")
    return respond(outcome("error", code, e.description or e.name), e.code or 500)


@fhir_bp.app_errorhandler(RouteNotFound)
@fhir_bp.app_errorhandler(MethodNotAllowed)
def unrouted(e: HTTPException):
    """Routing errors happen before any blueprint is chosen, so Flask asks only app-wide handlers: under
    /fhir they too answer an OperationOutcome (R4 http.html: every error is one); elsewhere unchanged."""
    if request.path == "/fhir" or request.path.startswith("/fhir/"):
        if isinstance(e, MethodNotAllowed) and set(e.valid_methods or ()) <= {"OPTIONS"}:
            e = RouteNotFound()  # only the CORS preflight route matched: no such FHIR path
        return http_error(e)
    return e


@fhir_bp.errorhandler(Exception)
def unexpected(e: Exception) -> Response:
    db.session.rollback()
    log.error("unhandled %s in the FHIR face", type(e).__name__,
              exc_info=True)  # frames only (gateway/ops/logs.py)
    return respond(outcome("fatal", "exception", "Internal server error"), 500)
