"""GET /account/export.zip, "download my record" (gateway/services/record_export.py).

Who is asking: the native session token, from the X-Parse-Session-Token header (apps) or from the
`phr_session_token` cookie, or the person signed in on these pages (the signed sign-in cookie): a plain
link on a page sends no custom header. Errors are Parse's `{code, error}` (views._error)."""
from __future__ import annotations

import tempfile

from flask import Response, request, send_file

from gateway.account.views import account_bp
from gateway.errors import Unauthenticated
from gateway.extensions import db
from gateway.services import file_types, record_export as rx
from gateway.services.users import UserService
from gateway.smart import pages, people

SESSION_COOKIE = "phr_session_token"
#: The zip is built in memory up to this size, then on disk: memory stays flat for large records.
SPOOL_BYTES = 8 * 1024 * 1024


@account_bp.get("/export.zip")
def export_zip() -> Response:
    """The signed-in person's whole record (every profile they own, or ?profile=ID) as a zip."""
    users = UserService(db.session)
    token = request.headers.get("X-Parse-Session-Token") or request.cookies.get(SESSION_COOKIE)
    if token:
        _, user = users.session_for_token(token)
    else:
        user = people.load_user(db.session, pages.signed_in_user_id())
    if user is None:
        raise Unauthenticated("Sign in to download your record")
    ids = [p.object_id for p in rx.profiles_for(db.session, user.object_id, request.args.get("profile"))]
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    rx.write_record_zip(db.session, users.principal(user), ids, out, who=user.username)
    db.session.commit()  # the audit rows
    out.seek(0)
    resp = send_file(out, mimetype="application/zip", as_attachment=True, download_name="health-record.zip")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers.update(file_types.SAFE_HEADERS)
    return resp
