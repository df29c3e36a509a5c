"""The FHIR face's hottest request without Flask: a plain read, GET /fhir/<type>/<id>.

As for the native reads (gateway/native/wsgi.py), Flask only adapted this request and its answer: the
request and app contexts, URL matching, the cookie session, hooks, werkzeug's WSGI response call. Without
them a read costs the server 0.68-0.78 ms of CPU instead of 1.01-1.20 (docs/PERFORMANCE.md). This front
answers a read with no query string, of a type the face serves and an id of FHIR's form, through the same
functions as the route (caller, SMART scope check, `answer_read`, the blueprint's error answers and CORS
headers) inside an app context; anything else goes on to Flask.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from flask import Flask
from werkzeug.datastructures import EnvironHeaders

from gateway.errors import DomainError
from gateway.ops.wsgi import CALLER, ROUTE

#: R4 id: 1-64 of letters, digits, '-' and '.' (so `_history`, `_search` and `$op` never match).
_READ = re.compile(r"/fhir/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})")


class FhirReads:
    """WSGI middleware: `app.wsgi_app = FhirReads(app, app.wsgi_app)`."""

    def __init__(self, app: Flask, downstream: Callable) -> None:
        # Imported here: the FHIR face imports the app's modules, and this module is imported while the app
        # is made.
        from gateway.fhir import auth, blueprint, views
        from gateway.fhir.params import RESOURCE_TYPES
        from gateway.fhir.routes import ROUTES

        self.auth, self.blueprint, self.views = auth, blueprint, views
        self.app = app
        self.downstream = downstream
        self.types = frozenset(RESOURCE_TYPES)
        self.route = next(r for r in ROUTES if r.handler is views.read)
        self.first_request = app.extensions["phr_live"].on_first_request

    def takes(self, environ: dict) -> tuple[str, str] | None:
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("QUERY_STRING") \
                or environ.get("CONTENT_LENGTH") not in (None, "", "0") \
                or "HTTP_TRANSFER_ENCODING" in environ or "HTTP_UPGRADE" in environ:
            return None
        m = _READ.fullmatch(environ.get("PATH_INFO", ""))
        return (m[1], m[2]) if m and m[1] in self.types else None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        read = self.takes(environ)
        if read is None:
            return self.downstream(environ, start_response)
        rt, rid = read
        self.first_request()
        environ[ROUTE] = "/fhir/{type}/{id}"
        with self.app.app_context():
            try:
                p = environ[CALLER] = self.auth.principal_from(EnvironHeaders(environ))
                self.auth.check_scopes(p, self.route, {"rt": rt, "rid": rid})
                resp = self.views.answer_read(p, rt, rid)
            except DomainError as e:
                resp = self.blueprint.domain_error(e)
            except Exception as e:  # noqa: BLE001 - as the blueprint's handler: an OperationOutcome 500
                resp = self.blueprint.unexpected(e)
            resp = self.blueprint.cors(resp)
        # The Response's own WSGI call rewrites Location headers through urllib (0.2 ms); these answers have
        # none, and set_data gave them their Content-Length.
        start_response(resp.status, resp.headers.to_wsgi_list())
        return [resp.get_data()]
