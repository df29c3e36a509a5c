"""The SMART authorization server's HTTP face: discovery, the OAuth endpoints, and the pages a person
signs in and decides on. Views stay thin: authlib (gateway/smart/server.py) and the services decide."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import orjson
from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for

from gateway.keys import is_master_key
from gateway.errors import DomainError
from gateway.extensions import db
from gateway.smart import clients, discovery, keys, pages, people, tokens, urls
from gateway.smart.server import StoredAuthorizeRequest, server

smart_bp = Blueprint("smart", __name__)

#: Discovery documents and the token endpoint are read by browser apps on other origins.
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, Accept",
        "Access-Control-Max-Age": "600"}
#: The pages are never framed (clickjacking a consent page), never cached, run no script.
PAGE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache", "X-Frame-Options": "DENY",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                                           "frame-ancestors 'none'; base-uri 'none'"}


def json_response(body, status: int = 200, cors: bool = True, cache: str | None = None) -> Response:
    resp = Response(orjson.dumps(body), status=status, mimetype="application/json")
    if cors:
        resp.headers.update(CORS)
    if cache:
        resp.headers["Cache-Control"] = cache
    return resp


def page(template: str, status: int = 200, **context) -> Response:
    resp = Response(render_template(template, csrf=pages.csrf_token(), **context), status=status,
                    mimetype="text/html")
    resp.headers.update(PAGE_HEADERS)
    return resp


def error_page(title: str, message: str, status: int = 400) -> Response:
    return page("smart/error.html", status, title=title, message=message)


# ---- discovery ----

@smart_bp.get("/fhir/.well-known/smart-configuration")
def smart_configuration() -> Response:
    """SMART App Launch 2.2 discovery."""
    return json_response(discovery.smart_configuration(urls.base()), cache="public, max-age=300")


@smart_bp.get("/oauth/.well-known/openid-configuration")
def openid_configuration() -> Response:
    """OpenID Connect discovery for our issuer."""
    return json_response(discovery.openid_configuration(urls.base()), cache="public, max-age=300")


@smart_bp.get("/oauth/jwks")
def jwks() -> Response:
    """Our public signing keys (id_tokens), old ones included until they are removed."""
    body = keys.public_jwks(db.session)
    db.session.commit()
    return json_response(body, cache="public, max-age=300")


@smart_bp.get("/oauth/style")
def style() -> Response:
    """The JSON behind smart_style_url."""
    return json_response(discovery.STYLE, cache="public, max-age=3600")


@smart_bp.route("/oauth/<path:anything>", methods=["OPTIONS"])
def preflight(anything: str = "") -> Response:
    """CORS preflight for browser apps."""
    return Response(status=204)


@smart_bp.after_request
def cors_preflight(resp: Response) -> Response:
    """Flask answers OPTIONS of the discovery routes itself; they need the CORS headers too."""
    if request.method == "OPTIONS":
        resp.headers.update(CORS)
    return resp


# ---- token, introspection, revocation ----

def _oauth_endpoint(make) -> Response:
    try:
        resp = make()
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    resp.headers.update(CORS)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp


@smart_bp.post("/oauth/token")
def token() -> Response:
    """The token endpoint (authorization_code, refresh_token, client_credentials)."""
    return _oauth_endpoint(lambda: server().create_token_response())


@smart_bp.post("/oauth/introspect")
def introspect() -> Response:
    """RFC 7662 token introspection."""
    return _oauth_endpoint(lambda: server().create_endpoint_response("introspection"))


@smart_bp.post("/oauth/revoke")
def revoke() -> Response:
    """RFC 7009 revocation: the whole grant ends."""
    return _oauth_endpoint(lambda: server().create_endpoint_response("revocation"))


# ---- authorize ----

def _authorize_error(error: OAuth2Error, oauth_request) -> Response:
    """Errors go back to the app only when its redirect_uri is a registered one; else a page says why."""
    if error.redirect_uri:
        return server().handle_error_response(oauth_request, error)
    return error_page("This app's request cannot be completed",
                      error.description or error.error, status=400)


#: RFC 6749 appendix A: every authorization request parameter (client_id, state, scope, redirect_uri...) is
#: made of printable ASCII (VSCHAR, NQCHAR, a URI): a CR or LF in one is never sent back in a Location.
_VSCHAR = re.compile(r"[\x20-\x7e]*")


@smart_bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize() -> Response:
    """Check the app's request, then send the person to sign in and decide (GET, or form POST)."""
    if not all(_VSCHAR.fullmatch(v) for pair in request.values.lists() for v in (pair[0], *pair[1])):
        return error_page("This app's request cannot be completed",
                          "A parameter holds characters OAuth does not allow (RFC 6749 appendix A).")
    srv = server()
    try:
        oauth_request = srv.create_oauth2_request(None)
    except OAuth2Error as e:  # plain http on a public address
        return error_page("This server is not reachable securely", e.description or e.error)
    try:
        srv.get_consent_grant(oauth_request, end_user=None)
    except OAuth2Error as e:
        return _authorize_error(e, oauth_request)
    except ValueError:  # authlib would not describe the error: a parameter its error text cannot carry
        return error_page("This app's request cannot be completed",
                          "A parameter holds characters OAuth does not allow (RFC 6749 appendix A).")
    rid = pages.remember(pages.public_params(request.values))
    return redirect(url_for("smart.authorize_page", rid=rid), 303)


def _client_name(client_id: str) -> str:
    row = clients.get_client(db.session, client_id)
    return row.name if row else client_id


@smart_bp.get("/oauth/authorize/<rid>")
def authorize_page(rid: str) -> Response:
    """Sign in, or choose the record and the permissions."""
    params = pages.pending(rid)
    if params is None:
        return error_page("This sign-in link has expired", "Go back to the app and start again.")
    user = people.load_user(db.session, pages.signed_in_user_id())
    app_name = _client_name(params["client_id"])
    return_to = urlsplit(params["redirect_uri"]).netloc
    if user is None:
        return page("smart/sign_in.html", app_name=app_name, return_to=return_to, next=f"authorize:{rid}")
    oauth_request = StoredAuthorizeRequest(params)
    try:
        grant = server().get_consent_grant(oauth_request, end_user=user)
    except OAuth2Error as e:
        pages.forget(rid)
        return _authorize_error(e, oauth_request)
    allowed = grant.request.scope
    return page("smart/consent.html", rid=rid, app_name=app_name, return_to=return_to, user=user,
                lines=pages.consent_lines(allowed), needs_patient=pages.needs_patient(allowed),
                choices=people.profile_choices(db.session, user))


@smart_bp.post("/oauth/sign-in")
def sign_in() -> Response:
    """Check the username and password, then go back to where the person was."""
    target = request.form.get("next", "")
    kind, _, rid = target.partition(":")
    if kind not in ("authorize", "manage", "account"):
        abort(400)
    if not pages.csrf_ok(request.form.get("csrf")):
        return error_page("Please try again", "The form was too old. Reload the page and sign in again.")
    user = people.authenticate(db.session, request.form.get("username", "").strip(), request.form.get("password", ""))
    if user is None:
        db.session.rollback()
        params = pages.pending(rid) if kind == "authorize" else None
        return page("smart/sign_in.html", 401, next=target, failed=True,
                    app_name=_client_name(params["client_id"]) if params else None,
                    return_to=urlsplit(params["redirect_uri"]).netloc if params else None,
                    username=request.form.get("username", ""))
    db.session.commit()
    pages.sign_in(user.object_id)
    if kind == "account":  # the patient's sharing pages (gateway/account) use this same sign-in
        return redirect(url_for("account.home"), 303)
    return redirect(url_for("smart.authorize_page", rid=rid) if kind == "authorize" else url_for("smart.manage"),
                    303)


@smart_bp.post("/oauth/sign-out")
def sign_out() -> Response:
    """Forget who is signed in on this browser."""
    if not pages.csrf_ok(request.form.get("csrf")):
        abort(400)
    pages.sign_out()
    return page("smart/signed_out.html")


@smart_bp.post("/oauth/authorize/<rid>/decide")
def decide(rid: str) -> Response:
    """Approve (with the ticked permissions and the chosen record) or deny; back to the app either way."""
    params = pages.pending(rid)
    user = people.load_user(db.session, pages.signed_in_user_id())
    if params is None or user is None:
        return error_page("This sign-in has expired", "Go back to the app and start again.")
    if not pages.csrf_ok(request.form.get("csrf")):
        return error_page("Please try again", "The form was too old. Go back to the app and start again.")
    srv = server()
    oauth_request = StoredAuthorizeRequest(params)
    try:
        grant = srv.get_consent_grant(oauth_request, end_user=user)
    except OAuth2Error as e:
        pages.forget(rid)
        return _authorize_error(e, oauth_request)
    approved = request.form.get("decision") == "approve"
    if approved:
        allowed = grant.request.scope
        patient_id = request.form.get("patient") or None
        choices = {c.profile_id for c in people.profile_choices(db.session, user)}
        if patient_id is not None and patient_id not in choices:
            abort(400)
        granted = pages.granted_scope(allowed, request.form.getlist("scope"), patient_id is not None)
        if pages.needs_patient(granted) and patient_id is None:
            return error_page("Choose a record", "Go back, choose whose record the app may open, and approve.")
        oauth_request.granted_scope = granted
        oauth_request.patient_id = patient_id if pages.needs_patient(granted) else None
        oauth_request.auth_time = pages.auth_time()
        approved = bool(set(granted.split()) - pages.IMPLIED)  # nothing ticked: a denial
    resp = srv.create_authorization_response(oauth_request, grant_user=user if approved else None, grant=grant)
    db.session.commit()
    pages.forget(rid)
    resp.headers.update(PAGE_HEADERS)
    return resp


# ---- the person's own view of the apps they allowed ----

@smart_bp.get("/oauth/manage")
def manage() -> Response:
    """The apps this person allowed, each with a button to end its access."""
    user = people.load_user(db.session, pages.signed_in_user_id())
    if user is None:
        return page("smart/sign_in.html", next="manage", app_name=None, return_to=None)
    grants = tokens.user_grants(db.session, user.object_id)
    names = {g.client_id: _client_name(g.client_id) for g in grants}
    return page("smart/manage.html", user=user, grants=grants, names=names)


@smart_bp.post("/oauth/manage/<grant_id>/revoke")
def manage_revoke(grant_id: str) -> Response:
    """End one app's access at once (its access and refresh tokens)."""
    user = people.load_user(db.session, pages.signed_in_user_id())
    if user is None or not pages.csrf_ok(request.form.get("csrf")):
        abort(400)
    if any(g.grant_id == grant_id for g in tokens.user_grants(db.session, user.object_id)):
        tokens.revoke_grant(db.session, grant_id)
        db.session.commit()
    return redirect(url_for("smart.manage"), 303)


# ---- registration (RFC 7591 subset; administrators only, with the master key) ----

@smart_bp.post("/oauth/register")
def register() -> Response:
    """Register a client, as `phr-gateway clients create` does. Needs the master key."""
    key = request.headers.get("X-Parse-Master-Key", "")
    if not is_master_key(key, current_app.config):
        return json_response({"error": "invalid_token", "error_description": "the master key is required"}, 401)
    meta = request.get_json(silent=True)
    if not isinstance(meta, dict):
        return json_response({"error": "invalid_client_metadata", "error_description": "send a JSON object"}, 400)
    try:
        made = clients.create_client(
            db.session, meta.get("client_name") or "unnamed app",
            auth_method=meta.get("token_endpoint_auth_method", "none"),
            redirect_uris=list(meta.get("redirect_uris") or []), scope=meta.get("scope"),
            jwks=meta.get("jwks"), jwks_url=meta.get("jwks_uri"), provider_id=meta.get("provider_id"))
    except DomainError as e:
        db.session.rollback()
        return json_response({"error": "invalid_client_metadata", "error_description": e.message}, 400)
    db.session.commit()
    row = made.row
    body = {**made.as_json(), "client_name": row.name, "redirect_uris": row.redirect_uris, "scope": row.scope,
            "token_endpoint_auth_method": row.auth_method}
    return json_response(body, 201, cache="no-store")
