"""PHR FHIR Gateway: a personal health record backend with Parse-compatible, FHIR R4 and SMART faces."""
from __future__ import annotations

from typing import Any

import orjson
from flask import Flask, Response
from flask.sessions import SecureCookieSessionInterface


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions (the sign-in and account pages use them), without building a signer
    for each API request that carries no session cookie (~1 % of a native GET)."""

    def open_session(self, app: Flask, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the application; tests pass their own config (DATABASE_URL, INSTANCE_PATH, keys)."""
    from gateway import config as config_mod
    from gateway.ops import app as ops
    from gateway.account import account_bp
    from gateway.caller_cache import CallerCache
    from gateway.extensions import db
    from gateway.fhir.blueprint import fhir_bp
    from gateway.graphql import graphql_bp
    from gateway.live import init_app as init_live
    from gateway.native import native_bp
    from gateway.smart import init_app as init_smart

    cfg = config_mod.load(config)
    app = Flask(__name__, instance_path=cfg["INSTANCE_PATH"])
    app.config.update(cfg)
    app.session_interface = CookieSessions()
    ops.init_app(app)  # the JSON error log before anything logs; /metrics when PHR_METRICS_TOKEN is set
    db.init_app(app)
    app.register_blueprint(native_bp)
    app.register_blueprint(fhir_bp)
    init_smart(app)  # before the first request: sets FHIR_SECURITY for the CapabilityStatement
    app.register_blueprint(graphql_bp)
    app.register_blueprint(account_bp)  # "download my record" (GET /account/export.zip)
    init_live(app)  # LiveQuery and FHIR Subscription sockets; threads start only when needed
    # token -> principal per process; invalidated through the hub's change bus (gateway/caller_cache.py)
    app.extensions["phr_callers"] = CallerCache(app.config["CALLER_CACHE_SECONDS"],
                                                epoch=app.extensions["phr_live"].caller_cache_epoch,
                                                engine=app.extensions["phr_db"][0])

    from gateway.fhir.wsgi import FhirReads
    from gateway.native.wsgi import NativeReads

    # The hot reads skip Flask: native GETs (gateway/native/wsgi.py), then plain FHIR reads
    # (gateway/fhir/wsgi.py).
    app.wsgi_app = NativeReads(app, FhirReads(app, app.wsgi_app))
    # Outside them all: request id, access log line, request metrics (gateway/ops/wsgi.py).
    ops.wrap(app)

    @app.get("/healthz")
    def healthz() -> Response:
        """Liveness and database reachability."""
        from sqlalchemy import text

        db.session.execute(text("SELECT 1"))
        return Response(orjson.dumps({"status": "ok"}), mimetype="application/json")

    return app
