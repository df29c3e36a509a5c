"""/files: upload (raw body, or the JS SDK's base64 JSON), download with access checks, delete (master)."""
from __future__ import annotations

import base64
import binascii

from gateway.errors import InvalidInput
from gateway.models import User
from gateway.native.context import NativeRequest, require_master
from gateway.native.router import Reply, route
from gateway.services.files import response_headers


@route("/files/<filename>", "POST")
def upload(req: NativeRequest, filename: str) -> Reply:
    """Store a file; answers its name and a download URL."""
    data, ctype = req.raw, req.content_type
    if req.body is not None and "base64" in req.body:
        try:
            data = base64.b64decode(req.body["base64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise InvalidInput("Invalid base64 file data.", parse_code=130) from None
        ctype = req.meta.get("content_type") or None
    stored = req.files().upload(filename, data, ctype)
    url = req.file_url(stored.name)
    return Reply({"url": url, "name": stored.name}, status=201, headers={"Location": url})


@route("/files/<app_id>/<filename>", "GET")
def download(req: NativeRequest, app_id: str, filename: str) -> Reply:
    """The file's bytes, for a caller who may see a record that uses it (session, master or signed URL)."""
    service = req.files()
    if not req.principal.authenticated:
        uid = service.principal_from_signature(filename, req.params)
        user = req.session.get(User, uid) if uid else None
        if user is not None:
            req.principal = req.users().principal(user)
            service = req.files()
    stored, data = service.download(filename)
    content_type, headers = response_headers(stored, data)
    return Reply(data, raw_type=content_type, headers=headers)


@route("/files/<filename>", "DELETE")
def delete(req: NativeRequest, filename: str) -> Reply:
    """Delete a file (master key only, as in Parse Server)."""
    require_master(req)
    req.files().delete(filename)
    return Reply({})
