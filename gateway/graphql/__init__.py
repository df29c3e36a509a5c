"""Parse Server's GraphQL API at /parse/graphql, generated from the class registry (gateway/schema.py) and
served by graphql-core over the same services, access policy and authentication as the native REST face.

POST application/json `{query, variables, operationName}` (or application/graphql); GET `?query=` for
queries only. Authentication: the native headers (X-Parse-Application-Id, X-Parse-Session-Token,
X-Parse-Master-Key, client keys when configured). Werkzeug matches this static rule before the native
blueprint's `/parse/<path:subpath>`, so the two live side by side.
"""
from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request
from graphql import (
    GraphQLError,
    OperationType,
    execute_sync,
    get_operation_ast,
    validate,
)
from graphql import (
    parse as parse_document,
)
from werkzeug.exceptions import RequestEntityTooLarge

from gateway.errors import DomainError, InvalidInput, TooLarge
from gateway.extensions import db
from gateway.graphql.errors import INTERNAL, format_error, parse_error
from gateway.graphql.types import build
from gateway.native import CORS_HEADERS
from gateway.native.context import NativeRequest, Unauthorized, authenticate, merge_meta
from gateway.ops.wsgi import note_caller
from gateway.services.inputs import check_depth

graphql_bp = Blueprint("graphql", __name__)


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


@graphql_bp.after_request
def cors(resp: Response) -> Response:
    resp.headers.update(CORS_HEADERS)
    return resp


def read_operation() -> tuple[str, dict[str, Any] | None, str | None]:
    """(query, variables, operationName) from a GET query string or a POST body."""
    if request.method == "GET":
        source: Any = dict(request.args)
        if isinstance(source.get("variables"), str) and source["variables"]:
            try:
                source["variables"] = orjson.loads(source["variables"])
            except orjson.JSONDecodeError:
                raise InvalidInput("variables is not valid JSON") from None
    else:
        try:
            raw = request.get_data(cache=False)
        except RequestEntityTooLarge:
            raise TooLarge("The request body is too large.", parse_code=116) from None
        if (request.mimetype or "") == "application/graphql":
            source = {"query": raw.decode("utf-8", "replace")}
        else:
            try:
                source = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise InvalidInput("Invalid JSON") from None
    if not isinstance(source, dict):
        raise InvalidInput("The request body must be a JSON object.")
    query, variables, name = source.get("query"), source.get("variables"), source.get("operationName")
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("A GraphQL request needs a query.")
    if variables is not None and not isinstance(variables, dict):
        raise InvalidInput("variables must be a JSON object.")
    check_depth(variables, "Invalid JSON: variables")
    if name is not None and not isinstance(name, str):
        raise InvalidInput("operationName must be a string.")
    return query, variables, name


def run(req: NativeRequest, query: str, variables: dict | None, name: str | None) -> tuple[dict, int]:
    """Parse, validate and execute one operation; the body and HTTP status of the answer."""
    schema = build()
    try:
        document = parse_document(query)
    except GraphQLError as e:
        return {"errors": [format_error(e)]}, 400
    errors = validate(schema, document)
    if errors:
        return {"errors": [format_error(e) for e in errors]}, 400
    operation = get_operation_ast(document, name)
    if request.method == "GET" and operation is not None and operation.operation != OperationType.QUERY:
        return {"errors": [parse_error("Mutations are only accepted in a POST request.", 102)]}, 405
    result = execute_sync(schema, document, variable_values=variables, operation_name=name, context_value=req)
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [format_error(e) for e in result.errors]
        if result.data is None and all(e.path is None for e in result.errors):
            return body, 400  # the variables did not fit: nothing ran
    return body, 200


@graphql_bp.route("/parse/graphql", methods=["GET", "POST", "OPTIONS"])
def endpoint() -> Response:
    """One GraphQL request: authenticate as the native face does, execute, commit."""
    if request.method == "OPTIONS":
        return Response("OK", mimetype="text/plain")
    session = db.session
    try:
        query, variables, name = read_operation()
        req = NativeRequest(
            method=request.method, path="/graphql", params={}, body=None, raw=b"",
            content_type=request.content_type, meta=merge_meta(request.headers, {}),
            config=current_app.config, session=session, callers=current_app.extensions.get("phr_callers"),
        )
        authenticate(req)
        note_caller(request.environ, req.principal)  # for the access log (gateway/ops/wsgi.py)
        body, status = run(req, query, variables, name)
        session.commit()
        return _json(body, status)
    except Unauthorized as e:
        session.rollback()
        return _json({"errors": [parse_error(e.message, 119)]}, 403)
    except DomainError as e:
        session.rollback()
        return _json({"errors": [parse_error(e.message, e.parse_code)]}, 413 if isinstance(e, TooLarge) else 400)
    except Exception as e:
        # Never a 500 page, a stack trace or a value in the answer: GraphQL's shape, Parse's code 1.
        session.rollback()
        current_app.logger.error("unhandled %s in GraphQL request", type(e).__name__,
                                 exc_info=True)  # frames only (gateway/ops/logs.py)
        return _json({"data": None, "errors": [parse_error("Internal server error.", INTERNAL)]})
