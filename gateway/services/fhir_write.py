"""Writing through the FHIR face: every resource goes through the mappings into the same native rows the
Parse face serves (ObjectService: access policy, versions, audit), and the FHIR view follows from them."""
from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import jsonpatch
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

import mappings
from mappings import patient as patient_mapping
from gateway import access
from gateway.access import Principal
from gateway.errors import (
    Forbidden, Gone, InvalidInput, Malformed, NotAllowed, NotFound, PreconditionFailed, Unprocessable)
from gateway.fhir import validation
from gateway.fhir.params import RESOURCE_TYPES
from gateway.models import FhirResource
from gateway.schema import class_spec
from gateway.services import write_buffer
from gateway.services.consents import apply_consent_status
from gateway.services.fhir_read import FhirReader
from gateway.services.fhir_store import mapping_context
from gateway.services.objects import ObjectService

_OUR_ID = re.compile(r"^[A-Za-z0-9]{10}$")
#: Resource types the server writes itself: clients may read and search them, never change them.
READ_ONLY = {"AuditEvent": "AuditEvent is an append-only trail written by the server",
             "Group": "Groups are derived from the grants patients give to a provider"}
_SERVER_FIELDS = ("objectId", "createdAt", "updatedAt", "ACL")


def etag_version(if_match: str | None) -> int | None:
    """The version in an If-Match header (W/"3" or "3")."""
    if not if_match:
        return None
    m = re.fullmatch(r'\s*(?:W/)?"?(\d+)"?\s*', if_match)
    if not m:
        raise InvalidInput(f"If-Match {if_match!r} is not an ETag like W/\"1\"")
    return int(m.group(1))


class FhirWriter:
    def __init__(self, session: Session, principal: Principal, base_url: str):
        self.session = session
        self.p = principal
        self.base_url = base_url
        self.ctx = mapping_context(session)
        self.objects = ObjectService(session, principal)
        self.reader = FhirReader(session, principal, base_url)

    # ---- helpers ----

    def _check(self, rt: str, resource: Any) -> None:
        if rt not in RESOURCE_TYPES:
            raise NotFound(f"Resource type {rt} is not served here")
        if rt in READ_ONLY:
            raise NotAllowed(READ_ONLY[rt])
        if not isinstance(resource, dict) or resource.get("resourceType") != rt:
            # Not the resource the URL names: it cannot even be parsed as one (400, R4 http.html#update).
            raise InvalidInput(f"The body must be a {rt} resource")
        issues = validation.json_problems(resource)
        if issues:
            raise Malformed(f"The {rt} is not FHIR JSON", issues)
        issues = validation.problems(resource, rt, json_checked=True)
        if issues:
            raise Unprocessable(f"The {rt} is not valid", issues)

    def _native(self, rt: str, resource: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
        """(class, native fields, _fhir) for a resource."""
        resource = {k: v for k, v in resource.items() if k != "meta" or set(v) - {"versionId", "lastUpdated"}}
        try:
            native = mappings.from_fhir(rt, resource, self.ctx)
            cls = mappings.class_for_resource(resource)
        except (KeyError, ValueError, TypeError) as e:
            raise Unprocessable(f"The {rt} cannot be stored: {e}") from None
        fhir = native.pop("_fhir", None)
        for key in _SERVER_FIELDS:
            native.pop(key, None)
        # What the server manages (a document's version number...) is the server's to set: a client that
        # sends back what it read must not be refused for it.
        spec = class_spec(cls)
        for name, f in (spec.fields.items() if spec else ()):
            if f.server_managed:
                native.pop(name, None)
        return cls, native, fhir

    def _row(self, rt: str, rid: str) -> FhirResource:
        row = self.session.scalar(select(FhirResource).where(
            FhirResource.resource_type == rt, FhirResource.id == rid, self.reader.readable()))
        if row is None:
            raise NotFound(f"{rt}/{rid} is not known")
        return row

    def current(self, rt: str, rid: str) -> FhirResource:
        return self.session.get(FhirResource, (rt, rid))

    # ---- interactions ----

    def create(self, rt: str, resource: dict[str, Any], *, object_id: str | None = None,
               fresh_id: bool = False) -> FhirResource:
        """`fresh_id`: the server just made `object_id` (see ObjectService.create)."""
        self._check(rt, resource)
        if rt == "Observation" and patient_mapping.is_blood_group_observation(resource):
            raise Unprocessable("A blood group is part of the Patient's profile: update "
                                "Observation/<patient id>-blood-group instead of creating one")
        cls, native, fhir = self._native(rt, resource)
        if rt == "Consent":
            apply_consent_status(resource, native)
        self._smart(rt, "c", [_profile_of(native)])
        with write_buffer.scope(self.session):
            written = self.objects.create(cls, native, fhir=fhir, object_id=object_id, fresh_id=fresh_id)
            return self._fresh(rt, written.row.object_id)

    def update(self, rt: str, rid: str, resource: dict[str, Any], *, if_match: str | None = None
               ) -> tuple[FhirResource, bool]:
        """Replace the resource (or create it under a client-chosen id); returns (row, created)."""
        with write_buffer.scope(self.session):
            return self._update(rt, rid, resource, if_match)

    def _update(self, rt: str, rid: str, resource: dict[str, Any], if_match: str | None
                ) -> tuple[FhirResource, bool]:
        self._check(rt, resource)
        if resource.get("id") != rid:
            raise InvalidInput(f"The resource id ({resource.get('id')!r}) must equal the id in the URL ({rid!r})")
        existing = self.current(rt, rid)
        if existing is None or existing.deleted:
            if existing is not None and self.reader.readable() is not None and if_match:
                raise PreconditionFailed(f"{rt}/{rid} was deleted")
            if not _OUR_ID.match(rid):
                raise Unprocessable("Ids of new resources are 10 letters and digits (update-as-create)")
            if existing is not None:
                raise Gone(f"{rt}/{rid} was deleted; its id cannot be reused")
            return self.create(rt, resource, object_id=rid), True
        row = self._row(rt, rid)
        expected = etag_version(if_match)
        if expected is not None and expected != row.version_id:
            raise PreconditionFailed(f"{rt}/{rid} is at version {row.version_id}, not {expected}")
        cls, native, fhir = self._native(rt, resource)
        self._smart(rt, "u", [row.profile_id] + ([_profile_of(native)] if "profile" in native else []))
        if rt == "Observation" and row.class_name == "Profile":  # the blood group lives on the profile
            self.objects.update("Profile", row.source_id, {"bloodType": native.get("bloodType")})
            return self._fresh(rt, rid), False
        spec = class_spec(cls)
        module = mappings.MODULES[rt]
        keep = set(getattr(module, "NATIVE_ONLY", ())) | {"profile"}
        source = self.objects.load(spec, row.source_id, for_write=True)
        if rt == "Consent":  # status has no column: inactive revokes the grant (services/consents.py)
            apply_consent_status(resource, native, source.revoked_at)
        current = self.objects.encode(spec, source)
        for name, f in spec.fields.items():
            if name not in native and name not in keep and not f.server_managed and current.get(name) is not None:
                native[name] = {"__op": "Delete"}
        self.objects.update(cls, row.source_id, native, fhir=fhir)
        return self._fresh(rt, rid), False

    def conditional_create(self, rt: str, resource: dict[str, Any], criteria: list[tuple[str, str]], *,
                           object_id: str | None = None) -> tuple[FhirResource, bool]:
        """Create unless the criteria (If-None-Exist) match: one match is returned as is (200), several
        are a 412 (R4 http.html#ccreate). Returns (row, created)."""
        page, _ = self.reader.search(rt, criteria, lenient=False)
        if len(page.matches) > 1:
            raise PreconditionFailed(f"If-None-Exist matched {len(page.matches)} resources")
        if page.matches:
            return page.matches[0], False
        return self.create(rt, resource, object_id=object_id), True

    def conditional_update(self, rt: str, resource: dict[str, Any], criteria: list[tuple[str, str]], *,
                           if_match: str | None = None, object_id: str | None = None) -> tuple[FhirResource, bool]:
        """PUT [type]?criteria: update the one match, create when there is none, 412 when several
        (R4 http.html#cond-update). Returns (row, created)."""
        page, _ = self.reader.search(rt, criteria, lenient=False)
        if len(page.matches) > 1:
            raise PreconditionFailed(f"The criteria matched {len(page.matches)} resources")
        if page.matches:
            rid = page.matches[0].id
            if resource.get("id") not in (None, rid):
                raise InvalidInput("The resource id does not match the resource the criteria found")
            return self.update(rt, rid, {**resource, "id": rid}, if_match=if_match)[0], False
        return self.create(rt, {k: v for k, v in resource.items() if k != "id"}, object_id=object_id), True

    def patch(self, rt: str, rid: str, operations: Any, *, if_match: str | None = None) -> FhirResource:
        """JSON Patch (RFC 6902) applied to the current resource, then an ordinary update."""
        if rt in READ_ONLY:
            raise NotAllowed(READ_ONLY[rt])
        row = self._row(rt, rid)
        if row.deleted:
            raise Gone(f"{rt}/{rid} was deleted")
        if not isinstance(operations, list):
            raise InvalidInput("A JSON Patch body is an array of operations")
        current = orjson.loads(row.body)
        try:
            patched = jsonpatch.JsonPatch(operations).apply(current)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as e:
            raise Unprocessable(f"The patch cannot be applied: {e}") from None
        patched.pop("meta", None)
        return self.update(rt, rid, patched, if_match=if_match or f'W/"{row.version_id}"')[0]

    def delete(self, rt: str, rid: str) -> None:
        if rt in READ_ONLY:
            raise NotAllowed(READ_ONLY[rt])
        row = self._row(rt, rid)
        self._smart(rt, "d", [row.profile_id])
        if row.deleted:
            return  # deleting a deleted resource succeeds (R4 http.html#delete)
        if rt == "Observation" and row.class_name == "Profile":
            self.objects.update("Profile", row.source_id, {"bloodType": {"__op": "Delete"}})
            return
        self.objects.delete(row.class_name, row.source_id)

    def _smart(self, rt: str, letter: str, profile_ids: list[str | None]) -> None:
        """A SMART token must name the interaction (403), and patient/ scopes keep writes inside the
        token's patient compartment (SMART App Launch 2.2; entries of a Bundle are checked one by one)."""
        if not access.smart_permits(self.p, rt, letter):
            raise Forbidden(f"The access token's scopes do not allow {letter!r} on {rt}")
        if not all(access.smart_patient_allows(self.p, pid) for pid in profile_ids):
            raise Forbidden("The access token is for another patient")

    def _fresh(self, rt: str, rid: str) -> FhirResource:
        """The resource as just written: the write buffer holds it (no need to read it back). A FhirResource,
        or for a new resource an object with its columns as attributes."""
        buffer = write_buffer.current(self.session)
        row = buffer.resources.get((rt, rid)) if buffer is not None else None
        if isinstance(row, dict):  # a new resource, inserted as a plain row: its columns as attributes, as
            return SimpleNamespace(**row)  # a search's rows have them (16 us for an ORM object, 0.2 for this)
        if row is not None:
            return row
        row = self.current(rt, rid)
        if row is None:
            raise NotFound(f"{rt}/{rid} was not stored")
        self.session.refresh(row)
        return row


def _profile_of(native: dict[str, Any]) -> str | None:
    """The profile (patient) a native record belongs to, from its `profile` pointer."""
    pointer = native.get("profile")
    return pointer.get("objectId") if isinstance(pointer, dict) else None
