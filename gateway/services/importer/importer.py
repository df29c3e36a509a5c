"""The Importer: writes the entries of read files through the one write path, acting as the owner (the
package docstring says how patients, the directory, documents and references are handled)."""
from __future__ import annotations

import base64
import binascii
import copy
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

import mappings
from gateway.access import MASTER, principal_for_user
from gateway.errors import DomainError, InvalidInput, NotFound
from gateway.fhir import validation
from gateway.models import FhirIndex, Profile, Provider, User
from gateway.schema import class_spec
from gateway.services.fhir_store import mapping_context
from gateway.services.files import FileService
from gateway.services.importer.report import ImportReport
from gateway.services.importer.sources import LAST_PHASE, PHASES, Entry, Source
from gateway.services.objects import ObjectService
from mappings import patient as patient_mapping
from mappings import related_person

DEFAULT_MAX_FILE_SIZE = 20 * 1024 * 1024

#: Mapped types that an import does not write, and why.
NOT_IMPORTED = {
    "Consent": "not imported: sharing is granted by the owner in the PHR, not copied from another system",
    "AuditEvent": "not imported: another system's audit trail is not part of the record",
    "Binary": "not imported on its own: only as the content of a DocumentReference",
}
#: The element of each profile-record type that names its patient.
PATIENT_ELEMENT = {
    "AllergyIntolerance": "patient",
    "Immunization": "patient",
    "MedicationStatement": "subject",
    "Observation": "subject",
    "DocumentReference": "subject",
    "RelatedPerson": "patient",
}
_HISTORY = re.compile(r"/_history/[^/]+$")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class _Target:
    """What a source reference now points to: a new (or matched) resource, or a skipped one."""

    resource_type: str | None = None
    id: str | None = None
    #: Why records pointing here are skipped too (a Patient that was skipped or already imported).
    skip_reason: str | None = None


def owner_by_username(session: Session, username: str | None) -> User:
    if not username:
        raise InvalidInput("an owner is required (--owner USERNAME): imported Patients become Profiles "
                           "owned by that user")
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


class Importer:
    """Imports Sources for one owner. References resolve across the files of one Importer (NDJSON from a
    bulk export has one file per type), so use one Importer per run and import Patients' files first."""

    def __init__(self, session: Session, owner: User, *, max_file_size: int = DEFAULT_MAX_FILE_SIZE,
                 validate: Callable[[dict[str, Any]], list[dict[str, Any]]] = validation.problems):
        self.session = session
        self.owner = owner
        self.principal = principal_for_user(session, owner)
        self.objects = ObjectService(session, self.principal)
        self.directory = ObjectService(session, MASTER)
        # Upload only: the signing secret is for download URLs, which an import never makes.
        self.files = FileService(session, self.principal, secret=b"", max_size=max_file_size, url_ttl=0)
        self.validate = validate
        self.ctx = mapping_context(session)
        self.targets: dict[str, _Target] = {}

    # -- one file --

    def import_source(self, source: Source) -> ImportReport:
        report = ImportReport()
        targets: dict[str, _Target] = {}
        keys = [self._keys(e) for e in source.entries]
        order = sorted(range(len(source.entries)),
                       key=lambda i: PHASES.get(source.entries[i].resource_type, LAST_PHASE))
        binaries = {k: e.resource for e, ks in zip(source.entries, keys) if e.resource_type == "Binary"
                    for k in ks}
        for i in order:
            entry = source.entries[i]
            rt = entry.resource_type
            try:
                target = self._import_entry(entry, targets, binaries, report)
            except _Skip as skip:
                report.skip(rt, skip.reason)
                target = skip.target
                if target is None and rt == "Patient":
                    target = _Target(skip_reason="its Patient was skipped")
            else:
                report.add(rt)
            if target is not None:
                for key in keys[i]:
                    targets[key] = target
        self.targets.update(targets)
        return report

    def _import_entry(self, entry: Entry, targets: dict[str, _Target], binaries: dict, report: ImportReport
                      ) -> _Target | None:
        rt, resource = entry.resource_type, entry.resource
        if resource is None:
            raise _Skip(f"no resource in the entry (request {entry.method or '?'} {entry.url or ''})".rstrip())
        if entry.method == "DELETE":
            raise _Skip("DELETE entries are not imported")
        if rt in NOT_IMPORTED:
            raise _Skip(NOT_IMPORTED[rt])
        if rt not in mappings.RESOURCE_TO_CLASS:
            raise _Skip(f"not mapped: the PHR has no record for {rt}")
        if rt == "Observation" and not patient_mapping.is_blood_group_observation(resource):
            categories = _observation_categories(resource)
            if categories and "laboratory" not in categories:
                raise _Skip(f"category {', '.join(sorted(categories))}: only laboratory Observations are kept")
        issues = self.validate(resource)
        if issues:
            raise _Skip(f"invalid R4: {issues[0].get('diagnostics', '')}"[:300])
        resource = self._rewrite(copy.deepcopy(resource), targets)
        if rt in PATIENT_ELEMENT:
            self._check_patient(entry.resource, rt, targets)
        try:
            with self.session.begin_nested():  # rolled back on any refusal: no half-written record or file
                return self._write(rt, resource, binaries, report)
        except DomainError as e:
            raise _Skip(f"not storable as {mappings.class_for_resource(resource)}: {e.message}") from None

    def _write(self, rt: str, resource: dict[str, Any], binaries: dict, report: ImportReport) -> _Target:
        if rt in ("Practitioner", "Organization"):
            return self._provider(rt, resource)
        if rt == "Patient":
            return self._patient(resource, report)
        if rt == "Observation" and patient_mapping.is_blood_group_observation(resource):
            native = patient_mapping.blood_type_from_observation(resource)
            if not native.get("bloodType"):
                raise _Skip("blood group Observation without a value")
            self.objects.update("Profile", native["objectId"], {"bloodType": native["bloodType"]})
            return _Target("Observation", patient_mapping.blood_group_observation_id(native["objectId"]))
        if rt == "DocumentReference":
            resource, file_fields = self._document_file(resource, binaries)
        class_name, native, fhir = self._native(rt, resource)
        if rt == "DocumentReference":
            native.update(file_fields)
            native.setdefault("title", native.get("description") or native.get("documentType"))
        row = self.objects.create(class_name, native, fhir=fhir).row
        return _Target(rt, row.object_id)

    # -- per type --

    def _patient(self, resource: dict[str, Any], report: ImportReport) -> _Target:
        existing = self._existing_profile(resource.get("identifier") or [])
        if existing:
            raise _Skip("already imported: a Profile of this owner has the same identifier",
                        _Target("Patient", existing, f"already imported: its Patient is Profile {existing}"))
        _, native, fhir = self._native("Patient", resource)
        pcp = native.get("primaryCareProvider")
        if isinstance(pcp, dict):
            # Profile.primaryCareProvider is text; a referenced practitioner is kept by name.
            provider = self.session.get(Provider, pcp.get("objectId"))
            native["primaryCareProvider"] = provider.name if provider else None
        profile = self.objects.create("Profile", native, fhir=fhir).row
        report.profiles.append(profile.object_id)
        for contact in related_person.contacts_from_patient({**resource, "id": profile.object_id}, self.ctx):
            try:
                with self.session.begin_nested():
                    self.objects.create("EmergencyContact", contact)
            except DomainError as e:
                report.skip("Patient.contact", f"not storable as EmergencyContact: {e.message}")
            else:
                report.add("Patient.contact")
        return _Target("Patient", profile.object_id)

    def _provider(self, rt: str, resource: dict[str, Any]) -> _Target:
        _, native, fhir = self._native(rt, resource)
        kind = native.get("kind") or ("organization" if rt == "Organization" else "practitioner")
        if native.get("systemId"):
            existing = self.session.scalar(select(Provider.object_id).where(
                Provider.system_id == native["systemId"], Provider.kind == kind, Provider.deleted_at.is_(None)))
            if existing:
                raise _Skip("already in the provider directory (same identifier)", _Target(rt, existing))
        row = self.directory.create("Provider", native, fhir=fhir).row
        return _Target(rt, row.object_id)

    def _document_file(self, resource: dict[str, Any], binaries: dict) -> tuple[dict[str, Any], dict]:
        """Upload the first attachment's bytes (inline `data`, or a Binary in the same file); the stored
        resource keeps no copy of them (the file is served as our Binary)."""
        attachments = [c.get("attachment") or {} for c in resource.get("content") or []]
        chosen = data = None
        for attachment in attachments:
            if attachment.get("data"):
                chosen, data = attachment, attachment["data"]
                break
            binary = binaries.get(attachment.get("url"))
            if binary and binary.get("data"):
                chosen, data = attachment, binary["data"]
                chosen.setdefault("contentType", binary.get("contentType"))
                break
        if chosen is None:
            urls = [a["url"] for a in attachments if a.get("url")]
            raise _Skip("attachment has only a url; files are not fetched" if urls
                        else "no attachment data")
        try:
            content = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise _Skip("attachment data is not valid base64") from None
        content_type = chosen.get("contentType") or "application/octet-stream"
        stored = self.files.upload(_file_name(chosen.get("title"), content_type), content, content_type)
        for attachment in attachments:
            attachment.pop("data", None)
            if attachment is chosen and attachment.get("url") in binaries:
                attachment.pop("url")
        return resource, {"file": {"__type": "File", "name": stored.name}}

    # -- helpers --

    def _native(self, rt: str, resource: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
        try:
            class_name = mappings.class_for_resource(resource)
            native = mappings.from_fhir(rt, resource, self.ctx)
        except (KeyError, ValueError, TypeError) as e:
            raise _Skip(f"cannot be mapped: {e}") from None
        fhir = native.pop("_fhir", None)
        # Ids, server fields and what the store keeps itself (the login, a document's version) are ours.
        managed = [name for name, f in class_spec(class_name).fields.items() if f.server_managed]
        for key in ("objectId", *getattr(mappings.MODULES[rt], "NATIVE_ONLY", ()), *managed):
            native.pop(key, None)
        return class_name, native, fhir

    def _existing_profile(self, identifiers: list[dict[str, Any]]) -> str | None:
        pairs = [(i["system"], i["value"]) for i in identifiers
                 if isinstance(i, dict) and i.get("system") and i.get("value")]
        if not pairs:
            return None
        match = or_(*[and_(FhirIndex.system == s, FhirIndex.value == v) for s, v in pairs])
        # The FHIR view indexes Patient.identifier (kept in the Profile's `_fhir`) for search; use it.
        return self.session.scalar(
            select(Profile.object_id)
            .join(FhirIndex, and_(FhirIndex.resource_type == "Patient", FhirIndex.resource_id == Profile.object_id,
                                  FhirIndex.param == "identifier"))
            .where(Profile.user_id == self.owner.object_id, Profile.deleted_at.is_(None), match)
            .order_by(Profile.created_at)
            .limit(1)
        )

    def _keys(self, entry: Entry) -> list[str]:
        keys = [entry.full_url] if entry.full_url else []
        if entry.resource is not None and isinstance(entry.resource.get("id"), str):
            keys.append(f"{entry.resource_type}/{entry.resource['id']}")
        return keys

    def _lookup(self, reference: str, targets: dict[str, _Target]) -> _Target | None:
        reference = _HISTORY.sub("", reference)
        return targets.get(reference) or self.targets.get(reference)

    def _check_patient(self, original: dict[str, Any], rt: str, targets: dict[str, _Target]) -> None:
        reference = (original.get(PATIENT_ELEMENT[rt]) or {}).get("reference")
        if not reference:
            raise _Skip(f"no {PATIENT_ELEMENT[rt]} reference to a Patient")
        target = self._lookup(reference, targets)
        if target is None:
            raise _Skip("its Patient is not in this import")
        if target.skip_reason:
            raise _Skip(target.skip_reason)
        if target.resource_type != "Patient" or target.id is None:
            raise _Skip(f"its {PATIENT_ELEMENT[rt]} is not a Patient")

    def _rewrite(self, node: Any, targets: dict[str, _Target]) -> Any:
        """References to imported resources get the new ids; references to anything else that lived in
        the source system (bundle-local, relative) are dropped, keeping display/identifier. Contained
        (#id) and absolute references to other servers stay. Emptied elements are pruned."""
        if isinstance(node, list):
            items = [self._rewrite(item, targets) for item in node]
            return [item for item in items if item not in (None, {}, [])]
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and not value.startswith("#"):
                target = self._lookup(value, targets)
                if target is not None and target.id is not None:
                    out[key] = f"{target.resource_type}/{target.id}"
                elif not _is_external(value):
                    continue
                else:
                    out[key] = value
                continue
            value = self._rewrite(value, targets)
            if value not in (None, {}, []):
                out[key] = value
        return out


class _Skip(Exception):
    def __init__(self, reason: str, target: _Target | None = None):
        super().__init__(reason)
        self.reason = reason
        self.target = target


def _is_external(reference: str) -> bool:
    """An absolute URL of another server (kept as is); `urn:` and relative ids belong to the source."""
    return reference.startswith(("http://", "https://"))


def _observation_categories(resource: dict[str, Any]) -> set[str]:
    """Category codes (observation-category: laboratory, vital-signs, ...), else the categories' texts."""
    concepts = [c for c in resource.get("category") or [] if isinstance(c, dict)]
    codes = {c["code"] for concept in concepts for c in concept.get("coding") or [] if c.get("code")}
    return codes or {concept["text"].strip().lower() for concept in concepts if concept.get("text")}


def _file_name(title: str | None, content_type: str) -> str:
    """A name FileService accepts: the attachment title, made safe, with the content type's extension."""
    base = _UNSAFE_NAME.sub("_", title or "").strip("._-")[:80] or "document"
    extension = mimetypes.guess_extension(content_type.split(";")[0].strip()) or ".bin"
    if base.lower().endswith(extension):
        return base
    return base + extension
