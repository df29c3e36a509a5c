"""Uploaded files: names, content types, hashes, signed download URLs, and who may download what.

A download needs the right to see a record that uses the file: the master key, the uploader before the
file is attached, or a reader of the MedicalDocument that holds it (any version). Signed URLs carry the
user they were made for and are checked again at download time, so revoking a grant stops downloads at
once, not when the URL expires.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import access
from gateway.access import Principal
from gateway.db import utcnow
from gateway.errors import Forbidden, InvalidInput, NotFound, TooLarge
from gateway.models import MedicalDocument, StoredFile
from gateway.services import file_types
from gateway.storage import blob_store

# Parse Server's rule for file names (isValidFilename), with a length cap.
_VALID_NAME = re.compile(r"^[_a-zA-Z0-9][a-zA-Z0-9@. ~_-]{0,127}$")
# Names a browser would run or a desktop would execute; refused whatever the content type says (Parse
# Server's fileUpload.fileExtensions, whose default refuses only the HTML ones). What the bytes may be is
# decided by file_types: its allow-list and a look at the content.
BLOCKED_EXTENSIONS = frozenset({
    "html", "htm", "shtml", "xhtml", "xht", "mht", "mhtml", "svg", "svgz", "js", "mjs", "xml", "xsl", "xslt",
    "php", "phtml", "jsp", "asp", "aspx", "exe", "dll", "com", "bat", "cmd", "sh", "ps1", "vbs", "msi", "jar",
    "scr", "hta", "swf",
})


class FileService:
    def __init__(self, session: Session, principal: Principal, *, secret: bytes, max_size: int, url_ttl: int):
        self.session = session
        self.p = principal
        self.secret = secret
        self.max_size = max_size
        self.url_ttl = url_ttl

    def upload(self, filename: str, data: bytes, content_type: str | None) -> StoredFile:
        if not self.p.authenticated:
            raise InvalidInput("File upload by public is disabled.", parse_code=130)
        if not _VALID_NAME.match(filename or ""):
            raise InvalidInput("Filename contains invalid characters.", parse_code=122)
        ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        if ext in BLOCKED_EXTENSIONS:
            raise InvalidInput(f"File upload of extension {ext} is disabled.", parse_code=130)
        if len(data) > self.max_size:
            raise TooLarge("File size exceeds the maximum allowed.")
        ctype = file_types.accept(filename, content_type, data)
        name = f"{secrets.token_hex(16)}_{filename.replace(' ', '_')}"
        row = StoredFile(
            name=name, original_name=filename, content_type=ctype, size=len(data),
            sha1_b64=base64.b64encode(hashlib.sha1(data).digest()).decode(),
            sha256_hex=hashlib.sha256(data).hexdigest(), created_by_id=self.p.user_id, created_at=utcnow(),
        )
        self.session.add(row)
        self.session.flush()
        blob_store.put(self.session, name, data)
        self.session.flush()
        return row

    def sign(self, name: str, user_id: str | None) -> str:
        exp = int(time.time()) + self.url_ttl
        return f"exp={exp}&uid={user_id or ''}&sig={self._mac(name, exp, user_id or '')}"

    def _mac(self, name: str, exp: int, uid: str) -> str:
        return hmac.new(self.secret, f"{name}|{exp}|{uid}".encode(), hashlib.sha256).hexdigest()[:40]

    def principal_from_signature(self, name: str, args: dict[str, Any]) -> str | None:
        """The user a valid, unexpired signature was made for, or None."""
        try:
            exp = int(args.get("exp", ""))
        except ValueError:
            return None
        uid, sig = args.get("uid", ""), args.get("sig", "")
        if exp < time.time() or not hmac.compare_digest(self._mac(name, exp, uid), str(sig)):
            return None
        return uid or None

    def may_download(self, stored: StoredFile) -> bool:
        if self.p.master:
            return True
        if stored.document_id is None:
            return self.p.user_id is not None and stored.created_by_id == self.p.user_id
        return self.session.scalar(
            select(MedicalDocument.object_id).where(
                MedicalDocument.object_id == stored.document_id,
                MedicalDocument.deleted_at.is_(None),
                access.read_filter(MedicalDocument, self.p),
            )
        ) is not None

    def download(self, name: str) -> tuple[StoredFile, bytes]:
        stored = self.session.get(StoredFile, name)
        if stored is None or stored.deleted_at is not None or not self.may_download(stored):
            raise NotFound("File not found.")
        return stored, blob_store.get(self.session, name)

    def delete(self, name: str) -> None:
        if not self.p.master:
            raise Forbidden("unauthorized: master key is required")
        stored = self.session.get(StoredFile, name)
        if stored is None or stored.deleted_at is not None:
            raise NotFound("File not found.")
        stored.deleted_at = utcnow()
        blob_store.delete(self.session, name)
        self.session.flush()


def response_headers(stored: StoredFile, data: bytes) -> tuple[str, dict[str, str]]:
    """(Content-Type, the other headers) of a stored file's response, whichever face serves it."""
    how = file_types.serving(stored.content_type, data)
    return how.content_type, {**file_types.download_headers(how, stored.original_name),
                              "Cache-Control": "private, no-store"}


def attach_to_document(session: Session, file_name: str, document_id: str) -> None:
    stored = session.get(StoredFile, file_name)
    if stored is not None and stored.document_id is None:
        stored.document_id = document_id
