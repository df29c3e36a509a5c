"""The operations layer on the Flask app: the JSON error log, the outermost WSGI layer, /metrics."""
from __future__ import annotations

import hmac

from flask import Flask, Response, request

from gateway.ops import logs
from gateway.ops.wsgi import ROUTE, Observed, _stdout, template_of


def init_app(app: Flask) -> None:
    """The error log's format now; the outermost WSGI layer and /metrics once the app's other layers are in
    place (call `wrap` last)."""
    logs.configure()
    app.before_request(_note_rule)
    token = app.config.get("METRICS_TOKEN")
    if token:
        app.add_url_rule("/metrics", "metrics", _metrics_view(token), methods=["GET"])


def _note_rule() -> None:
    """The Flask rule that matched, for the access log (Flask forgets its request once it answered)."""
    rule = request.url_rule
    if rule is not None:
        request.environ.setdefault(ROUTE, template_of(rule.rule))


def wrap(app: Flask) -> None:
    """Put the request layer outside every other one (the Flask-free fronts included)."""
    metrics = None
    first = None
    if app.config.get("METRICS_TOKEN"):
        from gateway.ops import metrics as m

        metrics = m.metrics()
        engine = app.extensions["phr_db"][0]

        def first() -> None:  # the pool of a process that serves (not of `serve`'s arbiter, which never does)
            m.watch_pool(engine)
    write = _stdout if app.config["ACCESS_LOG"] else None
    app.wsgi_app = Observed(app.wsgi_app, write=write, metrics=metrics, on_first_request=first)


def _metrics_view(token: str):
    expected = f"Bearer {token}".encode()

    def metrics() -> Response:
        """Prometheus exposition of every worker's metrics; only with the metrics token."""
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return Response("unauthorized\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'},
                            mimetype="text/plain")
        from flask import current_app

        from gateway.ops.metrics import scrape

        body, content_type = scrape(current_app.extensions["phr_db"][1])
        return Response(body, 200, {"Cache-Control": "no-store"}, content_type=content_type)

    return metrics
