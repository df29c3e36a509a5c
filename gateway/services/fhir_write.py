"""Writing through the FHIR face: every resource goes through the mappings into the same native rows the
Parse face serves (ObjectService: access policy, versions, audit), and the FHIR view follows from them."""
from __future__ import annotations

import re
from typing import Any

import jsonpatch
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

import mappings
from mappings import patient as patient_mapping
from gateway.access import Principal
from gateway.errors import Gone, InvalidInput, NotAllowed, NotFound, PreconditionFailed, Unprocessable
from gateway.fhir import validation
from gateway.fhir.params import RESOURCE_TYPES
from gateway.models import FhirResource
from gateway.schema import class_spec
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
        issues = validation.problems(resource, rt)
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

    def create(self, rt: str, resource: dict[str, Any], *, object_id: str | None = None) -> FhirResource:
        self._check(rt, resource)
        if rt == "Observation" and patient_mapping.is_blood_group_observation(resource):
            raise Unprocessable("A blood group is part of the Patient's profile: update "
                                f"Observation/<patient id>-blood-group instead of creating one")
        cls, native, fhir = self._native(rt, resource)
        written = self.objects.create(cls, native, fhir=fhir, object_id=object_id)
        return self._fresh(rt, written.row.object_id)

    def update(self, rt: str, rid: str, resource: dict[str, Any], *, if_match: str | None = None
               ) -> tuple[FhirResource, bool]:
        """Replace the resource (or create it under a client-chosen id); returns (row, created)."""
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
        if rt == "Observation" and row.class_name == "Profile":  # the blood group lives on the profile
            self.objects.update("Profile", row.source_id, {"bloodType": native.get("bloodType")})
            return self._fresh(rt, rid), False
        spec = class_spec(cls)
        module = mappings.MODULES[rt]
        keep = set(getattr(module, "NATIVE_ONLY", ())) | {"profile"}
        source = self.objects.load(spec, row.source_id, for_write=True)
        current = self.objects.encode(spec, source)
        for name, f in spec.fields.items():
            if name not in native and name not in keep and not f.server_managed and current.get(name) is not None:
                native[name] = {"__op": "Delete"}
        self.objects.update(cls, row.source_id, native, fhir=fhir)
        return self._fresh(rt, rid), False

    def patch(self, rt: str, rid: str, operations: Any, *, if_match: str | None = None) -> FhirResource:
        """JSON Patch (RFC 6902) applied to the current resource, then an ordinary update."""
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
        if row.deleted:
            return  # deleting a deleted resource succeeds (R4 http.html#delete)
        if rt == "Observation" and row.class_name == "Profile":
            self.objects.update("Profile", row.source_id, {"bloodType": {"__op": "Delete"}})
            return
        self.objects.delete(row.class_name, row.source_id)

    def _fresh(self, rt: str, rid: str) -> FhirResource:
        row = self.current(rt, rid)
        if row is None:
            raise NotFound(f"{rt}/{rid} was not stored")
        self.session.refresh(row)
        return row
