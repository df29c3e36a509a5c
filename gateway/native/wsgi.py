"""The native face's hot reads without Flask: GET /parse/classes/... (an object by id, a query).

The native API has its own router (router.py) and its views take a NativeRequest, not Flask's request, so
Flask only adapted the request and the response: for a GET by id that was ~0.1 ms of 0.35 ms of CPU in
process (request and app contexts, URL matching, hooks, a Response object; docs/PERFORMANCE.md). This front
sits before Flask and answers those requests through the same `answer()` with the same headers; anything
else (other methods, a body, files, LiveQuery's WebSocket at /parse, other faces) goes on to Flask.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl

from flask import Flask
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.utils import get_content_type

from gateway.extensions import request_session

PREFIX = "/parse/classes/"


class NativeReads:
    """WSGI middleware: `app.wsgi_app = NativeReads(app, app.wsgi_app)`."""

    def __init__(self, app: Flask, downstream: Callable) -> None:
        self.app = app
        self.downstream = downstream
        # Per request what Flask's before_request hooks would have done: the hub's first-request start.
        self.first_request = app.extensions["phr_live"].on_first_request

    def takes(self, environ: dict) -> bool:
        return (environ.get("REQUEST_METHOD") == "GET" and environ.get("PATH_INFO", "").startswith(PREFIX)
                and environ.get("CONTENT_LENGTH") in (None, "", "0") and "HTTP_TRANSFER_ENCODING" not in environ
                and "HTTP_UPGRADE" not in environ)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not self.takes(environ):
            return self.downstream(environ, start_response)
        from gateway.native import CORS_HEADERS, answer

        self.first_request()
        params: dict[str, str] = {}
        for key, value in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
            params.setdefault(key, value)  # the first of repeated keys, as dict(request.args)
        # PATH_INFO holds the path's bytes as latin-1 (PEP 3333); werkzeug reads them as UTF-8, so do we.
        path = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")[len("/parse"):]
        session = request_session(self.app)
        try:
            status, headers, body, mimetype = answer(self.app, session, "GET", path, params, b"", None,
                                                     EnvironHeaders(environ), environ)
        except HTTPException as e:
            return e(environ, start_response)
        finally:
            session.close()
        out = [("Content-Type", get_content_type(mimetype, "utf-8")), ("Content-Length", str(len(body))),
               *headers.items(), *CORS_HEADERS.items()]
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN')}", out)
        return [body]
