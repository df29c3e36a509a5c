"""The /account pages: server-rendered, no script, CSRF on every form, never framed or cached (thin views:
gateway/account/service.py decides)."""
from __future__ import annotations

from datetime import date

import orjson
from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask import session as cookie

from gateway.access import principal_for_user
from gateway.account.service import ACTION_NAMES, CATEGORY_NAMES, LEVEL_NAMES, TIMELINE_PAGE, SharingService
from gateway.db import utcnow
from gateway.errors import DomainError, InvalidInput
from gateway.extensions import db
from gateway.services.codec import iso, parse_iso
from gateway.smart import pages, people
from gateway.smart.views import PAGE_HEADERS

account_bp = Blueprint("account", __name__, url_prefix="/account")

#: The SMART pages' headers, and forms may post only to this server.
HEADERS = {**PAGE_HEADERS,
           "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"] + "; form-action 'self'"}
WORDS = {"categories": CATEGORY_NAMES, "levels": LEVEL_NAMES, "actions": ACTION_NAMES}


def page(template: str, status: int = 200, **context) -> Response:
    resp = Response(render_template(template, csrf=pages.csrf_token(), **WORDS, **context), status=status,
                    mimetype="text/html")
    resp.headers.update(HEADERS)
    return resp


def _signed_in():
    user = people.load_user(db.session, pages.signed_in_user_id())
    return user, (SharingService(db.session, principal_for_user(db.session, user)) if user else None)


def _sign_in_page() -> Response:
    return page("account/sign_in.html", 200)


def _done(message: str, anchor: str = "") -> Response:
    cookie["notice"] = message
    return redirect(url_for("account.home") + (f"#{anchor}" if anchor else ""), 303)


@account_bp.errorhandler(DomainError)
def _error(e: DomainError) -> Response:
    """JSON for the download (an app may call it); a page for people."""
    if request.path.endswith("/export.zip"):
        return Response(orjson.dumps({"code": e.parse_code, "error": e.message}), status=e.fhir_status,
                        mimetype="application/json")
    db.session.rollback()
    return page("account/error.html", e.fhir_status if e.fhir_status < 500 else 400, message=e.message)


@account_bp.get("")
@account_bp.get("/")
def home() -> Response:
    """Each profile with who may see it, the share form, and links to its access log."""
    user, sharing = _signed_in()
    if user is None:
        return _sign_in_page()
    profiles = sharing.profiles()
    return page("account/home.html", user=user, profiles=profiles, notice=cookie.pop("notice", None),
                grants={p.object_id: sharing.grants(p.object_id) for p in profiles},
                providers=sharing.providers(), today=utcnow().date().isoformat())


@account_bp.post("/profiles/<profile_id>/grants")
def grant(profile_id: str) -> Response:
    """Share chosen categories with a provider until a date."""
    user, sharing = _checked()
    if user is None:
        return _sign_in_page()
    until = _date(request.form.get("until", ""))
    made = sharing.grant(profile_id, request.form.get("provider", ""), request.form.getlist("category"),
                         request.form.get("level", "read"), until)
    db.session.commit()
    return _done("Shared. The provider can see what you chose from now on.", f"grant-{made.object_id}")


@account_bp.post("/grants/<grant_id>/revoke")
def revoke(grant_id: str) -> Response:
    """End a grant at once."""
    user, sharing = _checked()
    if user is None:
        return _sign_in_page()
    sharing.revoke(grant_id)
    db.session.commit()
    return _done("Access ended. It stopped at once, everywhere.", f"grant-{grant_id}")


@account_bp.get("/profiles/<profile_id>/audit")
def audit_log(profile_id: str) -> Response:
    """Who accessed or changed this profile's record, newest first (ids and types only)."""
    user, sharing = _signed_in()
    if user is None:
        return _sign_in_page()
    before = request.args.get("before")
    try:
        before_at = parse_iso(before) if before else None
    except (TypeError, ValueError):
        raise InvalidInput("That page of the access log does not exist.") from None
    profile = sharing.profile(profile_id)
    entries = sharing.timeline(profile_id, before_at)
    older = iso(entries[-1].when) if len(entries) == TIMELINE_PAGE else None
    return page("account/audit.html", user=user, profile=profile, entries=entries, older=older)


@account_bp.post("/sign-out")
def sign_out() -> Response:
    """Forget who is signed in on this browser."""
    if pages.csrf_ok(request.form.get("csrf")):
        pages.sign_out()
    return redirect(url_for("account.home"), 303)


def _checked():
    """The signed-in person for a form post, after its CSRF token is checked (400 page when stale)."""
    user, sharing = _signed_in()
    if user is not None and not pages.csrf_ok(request.form.get("csrf")):
        raise InvalidInput("The form was too old. Reload the page and try again.")
    return user, sharing


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput("Choose the date the sharing ends.") from None
