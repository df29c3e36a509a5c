"""SMART on FHIR authorization (App Launch 2.2, Backend Services) built on authlib: discovery, the OAuth
endpoints under /oauth, the pages a person signs in and decides on, and the CLI to register clients.
The resource-server side (bearer tokens on /fhir) is gateway/fhir/auth.py."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Bind the authorization server to `app` and tell the FHIR face how it is secured."""
    from gateway.smart.discovery import capability_security
    from gateway.smart.server import build_server
    from gateway.smart.views import smart_bp

    base = app.config["BASE_URL"]
    app.config["FHIR_SECURITY"] = capability_security(base)
    # The sign-in cookie of the authorize pages and the patient's /account pages: never sent cross-site,
    # never read by scripts, https-only when the server is. Path "/" because one cookie serves both
    # /oauth and /account; /parse and /fhir never read it (they authenticate by header only).
    app.config.update(SESSION_COOKIE_NAME="phr_signin", SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=base.startswith("https://"), SESSION_COOKIE_PATH="/")
    app.extensions["smart_server"] = build_server(app)
    app.register_blueprint(smart_bp)
