"""The Parse-compatible native REST API under /parse (the Back4app PHR template's contract)."""
from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, request
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from gateway.errors import DomainError, TooLarge
from gateway.extensions import commit, db
from gateway.native import batch, classes, files, misc, schemas, users  # noqa: F401  (register routes)
from gateway.native.context import NativeRequest, Unauthorized, authenticate, merge_meta, split_body
from gateway.native.router import NoRoute, Reply, match_rule
from gateway.ops.wsgi import note_caller, note_route, template_of
from gateway.services.inputs import refuse_nul

log = logging.getLogger("gateway.native")
native_bp = Blueprint("native", __name__)

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET,PUT,POST,DELETE,OPTIONS",
    "Access-Control-Allow-Headers": (
        "X-Parse-Master-Key, X-Parse-REST-API-Key, X-Parse-Javascript-Key, X-Parse-Application-Id, "
        "X-Parse-Client-Version, X-Parse-Session-Token, X-Requested-With, X-Parse-Revocable-Session, "
        "X-Parse-Request-Id, X-Parse-Installation-Id, Content-Type, Pragma, Cache-Control"
    ),
    "Access-Control-Expose-Headers": "X-Parse-Job-Status-Id, X-Parse-Push-Status-Id",
}


#: An answer of the native face: status, headers, body bytes, content type.
Answer = tuple[int, dict[str, str], bytes, str]


def _json(body, status: int = 200, headers: dict | None = None) -> Answer:
    return status, headers or {}, orjson.dumps(body), "application/json"


def error_response(e: DomainError) -> Answer:
    """Parse's error shape: {code, error}; 101 -> 404, 1 -> 500, key failures -> 403, else 400."""
    if isinstance(e, Unauthorized):
        return _json({"error": e.message}, 403)
    if isinstance(e, NoRoute):
        return _json({"code": e.parse_code, "error": e.message}, 404)
    status = {101: 404, 1: 500}.get(e.parse_code, 413 if isinstance(e, TooLarge) else 400)
    return _json({"code": e.parse_code, "error": e.message}, status)


def to_answer(reply: Reply) -> Answer:
    if reply.raw_type is not None:
        return reply.status, reply.headers, reply.body, reply.raw_type
    return _json(reply.body, reply.status, reply.headers)


def answer(app: Flask, session: Session, method: str, path: str, params: dict[str, Any], raw: bytes,
           content_type: str | None, headers, environ: dict | None = None) -> Answer:
    """Every native request, whichever server front brought it (Flask, or gateway/native/wsgi.py for the
    hot reads): parse its form, authenticate, route, commit or roll back. `headers` maps header names
    case-insensitively (werkzeug's EnvironHeaders); the caller and the route are noted in `environ` for the
    access log (gateway/ops/wsgi.py)."""
    try:
        # An id or a parameter with U+0000 would be refused by PostgreSQL's text, not by SQLite's: the same
        # 400 on both (services.inputs).
        texts = (path, *params, *(v for v in params.values() if type(v) is str))
        refuse_nul(texts, "The path and parameters")
        upload = method == "POST" and path.startswith("/files/")
        body, body_meta = split_body(raw, content_type, expect_json=method in ("POST", "PUT") and not upload)
        meta = merge_meta(headers, body_meta)
        if method == "POST" and meta.get("method") in ("GET", "PUT", "DELETE"):
            method = meta["method"]
        if method == "GET" and body:
            params.update(body)
        req = NativeRequest(
            method=method, path=path, params=params, body=body if method != "GET" else None, raw=raw,
            content_type=content_type, meta=meta, config=app.config, session=session,
            callers=app.extensions.get("phr_callers"),
        )
        download = method == "GET" and path.startswith("/files/")
        try:  # routed first for the access log; a missing route still answers after the key check
            view, kwargs, rule = match_rule(method, path)
            note_route(environ, template_of("/parse" + rule))
        except NoRoute as e:
            view, missing = None, e
            note_route(environ, "/parse/{unmatched}")
        authenticate(req, check_keys=not download)
        note_caller(environ, req.principal)
        if view is None:
            raise missing
        reply = view(req, **kwargs)
        commit(session)
        return to_answer(reply)
    except DomainError as e:
        session.rollback()
        return error_response(e)
    except HTTPException:
        session.rollback()
        raise
    except DataError as e:  # a value the database refuses that validation let through: the caller's error
        session.rollback()
        log.warning("database refused a value (%s) in %s %s", type(e.orig).__name__, method, _route(path))
        return _json({"code": 107, "error": "Invalid value."}, 400)
    except Exception as e:  # never a stack trace or a value in the answer; no record data in the log
        session.rollback()
        log.error("unhandled %s in %s %s", type(e).__name__, method, _route(path),
                  exc_info=True)  # frames only (gateway/ops/logs.py)
        return _json({"code": 1, "error": "Internal server error."}, 500)


def _route(path: str) -> str:
    """What a log line may say of a path: its first segment (ids and file names are the caller's data)."""
    return "/parse/" + path.strip("/").split("/", 1)[0]


@native_bp.after_request
def cors(resp: Response) -> Response:
    resp.headers.update(CORS_HEADERS)
    return resp


@native_bp.route("/parse/<path:subpath>", methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"])
def entry(subpath: str) -> Response:
    """The native face on Flask (what gateway/native/wsgi.py does not take)."""
    if request.method == "OPTIONS":
        return Response("OK", mimetype="text/plain")
    session = db.session
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        status, headers, body, mimetype = error_response(TooLarge("The request body is too large.", parse_code=116))
    else:
        status, headers, body, mimetype = answer(current_app, session, request.method, "/" + subpath,
                                                 dict(request.args), raw, request.content_type,
                                                 request.headers, request.environ)
    resp = Response(body, status=status, mimetype=mimetype)
    if "charset=" in mimetype:  # a file's own (text/plain; charset=iso-8859-1): not a second one from werkzeug
        resp.headers["Content-Type"] = mimetype
    resp.headers.update(headers)
    return resp
