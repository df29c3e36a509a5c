"""The outermost WSGI layer: every request, whichever front answers it (the Flask-free native GETs and FHIR
reads, Flask, a WebSocket), gets a request id, one access log line and its request metrics.

The faces say what only they know through the WSGI environ, so nothing is looked up twice: the route
template they matched (`ROUTE`; Flask's matched rule otherwise, gateway/ops/app.py) and who the caller
turned out to be (`CALLER`, the Principal). The log line carries no path, query, header or body value: a
route template, never the ids in the path; the caller's kind and OAuth client id, never a token or user id.

This runs on the hot reads, so it does per request only what it must: a perf_counter pair, one dict for
orjson, one write(2) of a pre-formatted line (no logging.LogRecord), and two cached metric children
(bench/ops_overhead.py measures it).
"""
from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import orjson

#: environ keys the faces fill in.
REQUEST_ID = "phr.request_id"
ROUTE = "phr.route"
CALLER = "phr.caller"

#: The request id of the request this thread serves, for the error log (gateway/ops/logs.py).
current_request_id: ContextVar[str | None] = ContextVar("phr_request_id", default=None)

#: A proxy's X-Request-Id is kept when it is 1-128 visible ASCII characters; anything else gets a new id.
_GIVEN_ID = re.compile(r"[!-~]{1,128}")
#: Path parameters as the templates name them (the FHIR and Parse specs' own words).
_NAMES = {"rt": "type", "rid": "id", "vid": "vid", "class_name": "className", "object_id": "objectId",
          "filename": "name", "app_id": "appId", "gid": "id", "job_id": "jobId", "file_id": "fileId"}
_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def note_route(environ: dict | None, template: str) -> None:
    if environ is not None:
        environ[ROUTE] = template


def note_caller(environ: dict | None, principal: Any) -> None:
    if environ is not None:
        environ[CALLER] = principal


@lru_cache(maxsize=1024)
def template_of(rule: str) -> str:
    """A werkzeug rule (`/fhir/<rt>/<rid>`) in the log's and the metrics' form (`/fhir/{type}/{id}`)."""
    return _PARAM.sub(lambda m: "{" + _NAMES.get(m[1], m[1]) + "}", rule)


def face_of(path: str, environ: dict) -> str:
    if path.startswith("/parse"):
        if path.startswith("/parse/graphql"):
            return "graphql"
        return "live" if "HTTP_UPGRADE" in environ else "native"
    if path.startswith("/fhir"):
        return "live" if path == "/fhir/ws" else "fhir"
    if path.startswith("/oauth"):
        return "smart"
    if path.startswith("/account"):
        return "account"
    if path in ("/healthz", "/metrics"):
        return "ops"
    return "other"


def caller_kind(p: Any) -> str | None:
    """anonymous, user, master, smart-app (a SMART token for a person) or backend-client; None when the
    request never got as far as authenticating (a page, a refused token)."""
    if p is None:
        return None
    if p.master:
        return "master"
    if p.smart is not None:
        return "smart-app" if p.user_id else "backend-client"
    if p.user_id:
        return "user"
    return "backend-client" if p.provider_ids else "anonymous"


class _Ids:
    """New request ids: a random prefix per process and a counter (os.urandom per request was a system call
    and 3 % of the layer). Unique across processes and restarts, not secret (nothing trusts them)."""

    def __init__(self) -> None:
        self._renew()
        os.register_at_fork(after_in_child=self._renew)  # gunicorn forks its workers after the app loads

    def _renew(self) -> None:
        self.prefix = os.urandom(6).hex()
        self.count = itertools.count(1)

    def new(self) -> str:
        return f"{self.prefix}{next(self.count):012x}"


_ids = _Ids()


class _Clock:
    """RFC 3339 UTC time of the log line, the date and time formatted once a second (datetime per line
    cost more than the rest of the line)."""

    cached = (-1, "")  # (second, its text), replaced whole: threads never see half of it

    def iso(self, at: float) -> str:
        second = int(at)
        cached = self.cached
        if cached[0] != second:
            cached = self.cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        return f"{cached[1]}.{int((at - second) * 1_000_000):06d}Z"


def _stdout(line: bytes) -> None:
    """One write(2) per line: lines below PIPE_BUF from several workers never interleave."""
    while line:
        line = line[os.write(1, line):]


class Observed:
    """WSGI middleware: `app.wsgi_app = Observed(app.wsgi_app, access_log=..., metrics=...)`."""

    def __init__(self, downstream: Callable, *, write: Callable[[bytes], None] | None = _stdout,
                 metrics: Any = None, on_first_request: Callable[[], None] | None = None) -> None:
        self.downstream = downstream
        self.write = write
        self.metrics = metrics
        self._series: dict[tuple, tuple[Any, Any]] = {}
        self._first = on_first_request
        self._clock = _Clock()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self._first is not None:
            first, self._first = self._first, None
            first()
        started, at = time.perf_counter(), time.time()
        rid = environ.get("HTTP_X_REQUEST_ID")
        if rid is None or not _GIVEN_ID.fullmatch(rid):
            rid = _ids.new()
        environ[REQUEST_ID] = rid
        current_request_id.set(rid)
        status = [500]

        def respond(line: str, headers: list, exc_info=None):
            status[0] = int(line[:3])
            headers.append(("X-Request-Id", rid))
            return start_response(line, headers, exc_info)

        try:
            body = self.downstream(environ, respond)
        except BaseException as e:
            # flask-sock ends a WebSocket under gunicorn by raising StopIteration once the socket closed
            upgraded = isinstance(e, StopIteration) and "HTTP_UPGRADE" in environ
            self.finish(environ, started, at, 101 if upgraded else 500, 0)
            raise
        if type(body) is list:  # the Flask-free fronts: the whole answer is here
            self.finish(environ, started, at, status[0], sum(map(len, body)))
            return body
        return _Streamed(body, self, environ, started, at, status)

    def finish(self, environ: dict, started: float, at: float, status: int, size: int) -> None:
        duration = time.perf_counter() - started
        current_request_id.set(None)
        face = face_of(environ.get("PATH_INFO", ""), environ)
        # What the face or Flask matched (gateway/ops/app.py), else a placeholder: a 404's path is no label.
        route = environ.get(ROUTE) or "{unmatched}"
        method = environ.get("REQUEST_METHOD", "")
        if self.metrics is not None:
            self._count(face, route, method, status, duration)
        if self.write is not None:
            p = environ.get(CALLER)
            self.write(orjson.dumps({
                "time": self._clock.iso(at), "request_id": environ[REQUEST_ID],
                "face": face, "method": method, "route": route, "status": status,
                "duration_ms": round(duration * 1000, 3), "bytes": size, "principal": caller_kind(p),
                "client_id": getattr(p, "client_id", None),
            }, option=orjson.OPT_APPEND_NEWLINE))

    def _count(self, face: str, route: str, method: str, status: int, duration: float) -> None:
        key = (face, route, method, status)
        series = self._series.get(key)
        if series is None:
            from gateway.ops.metrics import METHODS

            label = method if method in METHODS else "other"
            series = self._series[key] = (self.metrics.requests.labels(face, route, label, str(status)),
                                          self.metrics.latency.labels(face, route, label))
        series[0].inc()
        series[1].observe(duration)


class _Streamed:
    """A body the server pulls piece by piece (Flask's answers, exports, downloads): counted as it passes,
    logged when it is done or closed, whichever comes first."""

    __slots__ = ("body", "it", "observed", "environ", "started", "at", "status", "size", "done")

    def __init__(self, body: Iterable[bytes], observed: Observed, environ: dict, started: float, at: float,
                 status: list[int]) -> None:
        self.body, self.it = body, iter(body)
        self.observed, self.environ, self.status = observed, environ, status
        self.started, self.at = started, at
        self.size, self.done = 0, False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            chunk = next(self.it)
        except StopIteration:
            self._finish()
            raise
        except BaseException:
            self.status[0] = 500  # the answer broke off after its status line
            self._finish()
            raise
        self.size += len(chunk)
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self._finish()

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            self.observed.finish(self.environ, self.started, self.at, self.status[0], self.size)
