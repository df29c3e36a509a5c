"""A patient's whole record in standard form: NDJSON per FHIR resource type, the documents' files, and a
README, as a zip streamed into any file-like object (or as a folder). One code path for `phr-gateway
export` and the "download my record" page (GET /account/export.zip).

What is in it is what the person may read of the profiles they own, through the one access policy
(gateway/access.py): the same rows the FHIR face serves, Binary excepted (each DocumentReference's file is
under documents/ instead, named after the DocumentReference's id). Rows are streamed in batches and written
as they come, so memory stays flat however long the record is.
"""
from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from gateway import access, audit
from gateway.access import Principal
from gateway.db import utcnow
from gateway.errors import NotFound
from gateway.fhir.params import RESOURCE_TYPES
from gateway.models import FhirResource, MedicalDocument, Profile, StoredFile
from gateway.storage import blob_store

BATCH = 1000
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Summary:
    """What an export wrote: resources per type, document files, every file (NDJSON, documents, README)."""

    types: dict[str, int] = field(default_factory=dict)
    documents: int = 0
    files: int = 0

    @property
    def resources(self) -> int:
        return sum(self.types.values())


class Sink(Protocol):
    def open(self, name: str) -> IO[bytes]: ...


class ZipSink:
    """Entries of a zip being written to a (possibly unseekable) stream."""

    def __init__(self, zf: zipfile.ZipFile):
        self.zf = zf

    def open(self, name: str) -> IO[bytes]:
        return self.zf.open(name, "w", force_zip64=True)  # sizes unknown up front: allow > 2 GiB


class FolderSink:
    def __init__(self, root: Path):
        self.root = root

    def open(self, name: str) -> IO[bytes]:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("wb")


def profiles_for(session: Session, user_id: str, profile_id: str | None = None) -> list[Profile]:
    """The profiles a user owns (one, when asked for, and only if it is theirs)."""
    stmt = select(Profile).where(Profile.user_id == user_id, Profile.deleted_at.is_(None)).order_by(Profile.object_id)
    if profile_id:
        stmt = stmt.where(Profile.object_id == profile_id)
    profiles = list(session.scalars(stmt))
    if profile_id and not profiles:
        raise NotFound(f"Profile {profile_id} is not one of this user's profiles")
    return profiles


def _rows_filter(p: Principal, profile_ids: list[str]):
    R = FhirResource
    return and_(R.profile_id.in_(profile_ids), R.deleted.is_(False), access.fhir_read_filter(p, R))


def _documents(session: Session, p: Principal, profile_ids: list[str]):
    D = MedicalDocument
    return (select(D.object_id, D.title, StoredFile.original_name, StoredFile.name)
            .join(StoredFile, StoredFile.name == D.file_name)
            .where(D.profile_id.in_(profile_ids), D.deleted_at.is_(None), access.read_filter(D, p))
            .order_by(D.object_id))


def count_items(session: Session, p: Principal, profile_ids: list[str]) -> int:
    """How many resources and document files an export of these profiles will write (for progress bars)."""
    if not profile_ids:
        return 0
    resources = session.scalar(select(func.count()).select_from(FhirResource).where(_rows_filter(p, profile_ids)))
    documents = session.scalar(select(func.count()).select_from(_documents(session, p, profile_ids).subquery()))
    return (resources or 0) + (documents or 0)


def safe_name(document_id: str, original: str | None) -> str:
    """documents/<DocumentReference id>-<the uploaded name, made harmless> (no paths, no dot files)."""
    name = _UNSAFE.sub("_", (original or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip("._")[:100]
    return f"documents/{document_id}-{name or 'file'}"


def write_record(session: Session, p: Principal, profile_ids: list[str], sink: Sink, *,
                 progress: Callable[[int], None] | None = None, who: str = "") -> Summary:
    """Write the record of `profile_ids` (as `p` may read it) into `sink`; `progress(n)` after each batch."""
    summary = Summary()
    step = progress or (lambda n: None)
    R = FhirResource
    for rt in RESOURCE_TYPES:
        stmt = (select(R.body).where(R.resource_type == rt, _rows_filter(p, profile_ids)).order_by(R.id)
                .execution_options(yield_per=BATCH))
        out, n = None, 0
        for partition in session.execute(stmt).partitions(BATCH):
            if out is None:
                out = sink.open(f"{rt}.ndjson")
            out.write(b"".join(body.encode() + b"\n" for (body,) in partition))
            n += len(partition)
            step(len(partition))
        if out is not None:
            out.close()
            summary.types[rt] = n
            summary.files += 1
    for doc_id, _title, original, stored in session.execute(_documents(session, p, profile_ids)):
        data = blob_store.get(session, stored)
        if data is None:  # a file whose bytes are gone: the DocumentReference still says what it was
            continue
        with sink.open(safe_name(doc_id, original)) as out:
            out.write(data)
        summary.documents += 1
        summary.files += 1
        step(1)
    with sink.open("README.txt") as out:
        out.write(_readme(session, profile_ids, summary, who).encode())
    summary.files += 1
    for pid in profile_ids:
        audit.record(session, p, "export", "Profile", pid, profile_id=pid,
                     details={"resources": summary.resources, "documents": summary.documents})
    return summary


def write_record_zip(session: Session, p: Principal, profile_ids: list[str], out: IO[bytes], **kw) -> Summary:
    """The record as a zip streamed into `out` (a file, a socket, a SpooledTemporaryFile...)."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        return write_record(session, p, profile_ids, ZipSink(zf), **kw)


def _readme(session: Session, profile_ids: list[str], summary: Summary, who: str) -> str:
    names = dict(session.execute(select(Profile.object_id, Profile.full_name)
                                 .where(Profile.object_id.in_(profile_ids))).all())
    lines = [
        "Your health record, exported from the PHR FHIR Gateway",
        "",
        f"Exported: {_iso(utcnow())}" + (f" for {who}" if who else ""),
        "Profiles: " + ", ".join(f"{names.get(pid, pid)} (Patient/{pid})" for pid in profile_ids),
        "",
        "What is inside",
        "- <ResourceType>.ndjson: FHIR R4 resources, one JSON resource per line (NDJSON, the format of FHIR",
        "  Bulk Data). Any FHIR-capable system can import them; Patient.ndjson holds your profiles.",
        "- documents/: the files of your documents. documents/<id>-<name> is the file of DocumentReference <id>",
        "  (in FHIR the file itself is a Binary; here it is the file as you uploaded it).",
        "",
        "Counts",
        *[f"- {rt}: {n}" for rt, n in summary.types.items()],
        f"- document files: {summary.documents}",
        "",
    ]
    return "\n".join(lines)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
