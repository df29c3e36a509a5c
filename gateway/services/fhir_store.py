"""Keeps the FHIR view (fhir_resource, fhir_history, fhir_index) in step with the native rows.

Called after every native write (services/objects.py, audit.py): the record goes through the mappings,
the resource is stored as JSON text with its meta, its previous FHIR version goes to history, and its
search values are re-indexed. Derived resources follow their sources: a Patient is re-made when one of
its emergency contacts changes, and a Profile's blood group is its own Observation.
Rows go through the write buffer (services/write_buffer.py): a Bundle's resources, history and index rows
reach the database as a few multi-row INSERTs.
"""
from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

import mappings
from mappings import patient as patient_mapping
from mappings.context import MappingContext
from gateway import access
from gateway.db import utcnow
from gateway.models import (
    EmergencyContact, FhirHistory, FhirIndex, FhirResource, Profile, Provider, SharedAccess, StoredFile,
)
from gateway.schema import ClassSpec, class_spec
from gateway.services import codec, write_buffer

#: The sharing category of the blood-group Observation: it is a laboratory result about the patient.
BLOOD_GROUP_CATEGORY = "labs"


def mapping_context(session: Session) -> MappingContext:
    """The app puts its FHIR base into session.info; services never import Flask."""
    base = session.info.get("fhir_base")
    return MappingContext(base_url=base) if base else mappings.DEFAULT


def native_record(session: Session, spec: ClassSpec, row,
                  encoded: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record as the mappings take it: Parse JSON with `_fhir`, providers included, file metadata.
    `encoded`: the row's codec.encode(..., with_fhir=True) when the caller made it already (left unchanged)."""
    record = dict(encoded) if encoded is not None else codec.encode(spec, row, with_fhir=True)
    record["version"] = row.doc_version if spec.name == "MedicalDocument" else record.get("version")
    if record.get("version") is None:
        record.pop("version", None)
    for name, f in spec.fields.items():
        if f.type == "Pointer" and f.target == "Provider" and isinstance(record.get(name), dict):
            provider = session.get(Provider, record[name]["objectId"])
            if provider is not None:
                record[name] = {**codec.encode(class_spec("Provider"), provider), "__type": "Object",
                                "className": "Provider"}
        if f.type == "File" and isinstance(record.get(name), dict):
            stored = session.get(StoredFile, record[name]["name"])
            if stored is not None:
                record[name] = {**record[name], "contentType": stored.content_type, "size": stored.size,
                                "hash": stored.sha1_b64}
    return record


class FhirStore:
    def __init__(self, session: Session):
        self.session = session
        self.ctx = mapping_context(session)

    def sync(self, class_name: str, row, *, deleted: bool = False, created: bool = False,
             encoded: dict[str, Any] | None = None) -> None:
        """Bring the record's FHIR resource(s) up to date. `created`: the row was just inserted, so nothing
        of it can be stored yet (no current version to read, no contacts, no index rows to clear)."""
        spec = class_spec(class_name)
        if spec.name not in mappings.CLASS_TO_RESOURCE:
            return
        with write_buffer.scope(self.session) as buffer:
            if spec.name in ("Profile", "EmergencyContact"):
                self._note(buffer, spec, row, deleted, created, encoded)
            self._sync(spec, row, deleted, created, encoded)

    def _sync(self, spec: ClassSpec, row, deleted: bool, created: bool, encoded: dict[str, Any] | None,
              contacts: list[dict[str, Any]] | None = None) -> None:
        """`contacts`: a Profile's EmergencyContacts, when the caller has them."""
        record = native_record(self.session, spec, row, encoded)
        category = spec.category
        profile_id = row.object_id if spec.name == "Profile" else getattr(row, "profile_id", None)
        if spec.name == "Profile":
            if contacts is None:
                contacts = [] if deleted or created else self._contacts(row.object_id)
            resource = patient_mapping.to_fhir(record, self.ctx, emergency_contacts=contacts)
            self._put(resource, spec.name, row.object_id, profile_id, None, deleted, new=created)
            obs = None if deleted else patient_mapping.blood_group_observation(record, self.ctx)
            obs_id = patient_mapping.blood_group_observation_id(row.object_id)
            if obs is not None:
                self._put(obs, spec.name, row.object_id, profile_id, BLOOD_GROUP_CATEGORY, False, new=created)
            elif not created and self.session.get(FhirResource, ("Observation", obs_id)) is not None:
                self._put({"resourceType": "Observation", "id": obs_id}, spec.name, row.object_id, profile_id,
                          BLOOD_GROUP_CATEGORY, True)
            return
        resource = mappings.to_fhir(spec.name, record, self.ctx)
        if spec.name == "Provider":
            # A provider whose kind changed moves between Practitioner and Organization.
            other = "Organization" if resource["resourceType"] == "Practitioner" else "Practitioner"
            stale = self.session.get(FhirResource, (other, row.object_id))
            if stale is not None and not stale.deleted:
                self._put({"resourceType": other, "id": row.object_id}, spec.name, row.object_id, None, None, True)
        source = self._source(row, profile_id)
        if source and not deleted:
            resource = {**resource, "meta": {**(resource.get("meta") or {}), "source": source}}
        self._put(resource, spec.name, row.object_id, profile_id, category, deleted, new=created)
        if spec.name == "SharedAccess" and row.provider_id:
            self.sync_group(row.provider_id)
        if spec.name == "EmergencyContact":
            # The Patient shows its contacts: stored again once per write scope (a Bundle adding two
            # contacts makes one new Patient version, not two), before the scope's rows go out.
            write_buffer.current(self.session).once(("patient-contacts", row.profile_id),
                                                    lambda: self._contacts_changed(row.profile_id))

    @staticmethod
    def _note(buffer: write_buffer.WriteBuffer, spec: ClassSpec, row, deleted: bool, created: bool,
              encoded: dict[str, Any] | None) -> None:
        """Keep a profile made in this scope and the contacts made for it (`_contacts_changed`)."""
        made = created and not deleted
        if spec.name == "Profile":
            if made:
                buffer.new_profiles[row.object_id] = write_buffer.NewProfile(row, encoded)
            else:
                buffer.new_profiles.pop(row.object_id, None)
            return
        profile = buffer.new_profiles.get(row.profile_id)
        if not made:  # changed, deleted or moved: which profile it left is not known here
            buffer.new_profiles.clear()
        elif profile is not None:
            record = encoded if encoded is not None else codec.encode(spec, row)
            profile.contacts.append((row.created_at, row.object_id, record))

    def _contacts_changed(self, profile_id: str) -> None:
        made = write_buffer.current(self.session).new_profiles.get(profile_id)
        if made is not None:
            # Made in this scope, as were all its contacts: the Patient is re-made from them (no reads), and
            # while its rows still wait in the buffer, rewritten there (`_put`).
            contacts = [record for _, _, record in sorted(made.contacts, key=lambda c: c[:2])]
            self._sync(class_spec("Profile"), made.row, False, True, made.record, contacts)
            return
        profile = self.session.get(Profile, profile_id)
        if profile is not None and profile.deleted_at is None:
            self.sync("Profile", profile)

    def _source(self, row, profile_id: str | None) -> str | None:
        """meta.source for a record someone other than its patient's owner wrote: the provider (a record
        a doctor added through a write grant shows who wrote it), or the back-end client."""
        writer = getattr(row, "written_by", None)
        if not writer or writer == "master" or profile_id is None:
            return None
        if writer.startswith("client:"):
            return f"{self.ctx.base}/identifier/client/{writer[7:]}"
        # The same for every record of a Bundle: asked once (ObjectService forgets it when a profile or a
        # provider is written).
        buffer = write_buffer.current(self.session)
        if buffer is None:
            return self._user_source(writer, profile_id)
        return buffer.remember(("fhir-source", writer, profile_id),
                               lambda: self._user_source(writer, profile_id))

    def _user_source(self, writer: str, profile_id: str) -> str | None:
        owner = access.known_owner(self.session, profile_id) or self.session.scalar(
            select(Profile.user_id).where(Profile.object_id == profile_id))
        if writer == owner:
            return None
        provider = self.session.scalar(select(Provider).where(Provider.user_id == writer, Provider.deleted_at.is_(None)))
        if provider is not None:
            kind = "Organization" if provider.kind == "organization" else "Practitioner"
            return f"{self.ctx.base}/{kind}/{provider.object_id}"
        return f"{self.ctx.base}/identifier/_User/{writer}"

    def sync_group(self, provider_id: str) -> None:
        """The provider's Group: the patients whose grants to it are active now (Bulk Data group export)."""
        from gateway import access

        provider = self.session.get(Provider, provider_id)
        if provider is None:
            return
        grantee = access.Principal(provider_ids=frozenset({provider_id}))
        members = sorted(set(self.session.scalars(select(SharedAccess.profile_id).where(access.active_grants(grantee)))))
        kind = "Organization" if provider.kind == "organization" else "Practitioner"
        group = {
            "resourceType": "Group", "id": provider_id, "active": provider.deleted_at is None, "type": "person",
            "actual": True, "name": f"Patients sharing their records with {provider.name}",
            "managingEntity": {"reference": f"{kind}/{provider_id}"}, "quantity": len(members),
        }
        if members:
            group["member"] = [{"entity": {"reference": f"Patient/{m}"}} for m in members]
        current = self.session.get(FhirResource, ("Group", provider_id))
        if current is not None and not current.deleted and orjson.loads(current.body).get("member") == group.get("member"):
            return
        self._put(group, "Group", provider_id, None, None, False)

    def _contacts(self, profile_id: str) -> list[dict[str, Any]]:
        spec = class_spec("EmergencyContact")
        rows = self.session.scalars(select(EmergencyContact).where(
            EmergencyContact.profile_id == profile_id, EmergencyContact.deleted_at.is_(None)))
        # Ordered here, not by the database's collation: the order `_contacts_changed` gives contacts it
        # has not read back
        return [codec.encode(spec, r) for r in sorted(rows, key=lambda r: (r.created_at, r.object_id))]

    def _put(self, resource: dict[str, Any], class_name: str, source_id: str, profile_id: str | None,
             category: str | None, deleted: bool, *, new: bool = False) -> None:
        """Store a version of the resource (`new`: none was stored before), its history row and index rows.
        One interaction makes at most one version of a resource: stored again in the same write scope (a
        transaction's new Patient once more with the contacts it adds), the version it made is rewritten,
        so what the transaction answered (location, ETag, lastModified) stays what the server holds: in the
        buffer while its rows wait there, else by UPDATE."""
        # Imported here: `gateway.fhir` imports the FHIR face, which imports this module (a cycle that broke
        # `phr-gateway demo`, whose first import is gateway.demo -> services.objects -> this module).
        from gateway.fhir.extract import index_rows

        rt, rid = resource["resourceType"], resource["id"]
        with write_buffer.scope(self.session) as buffer:
            made = buffer.versions.get((rt, rid))
            if made is not None and not deleted and made.method != "delete" and made.sent == buffer.sent:
                self._rewrite(buffer, made, resource, class_name=class_name, source_id=source_id,
                              profile_id=profile_id, category=category)
                return
            current = None if new and made is None else self.session.get(FhirResource, (rt, rid))
            if deleted and (current is None or current.deleted):
                return
            again = made is not None and current is not None and not deleted and made.method != "delete"
            if again:
                version, method, now = made.number, made.method, made.now
            else:
                now = utcnow()
                version = (current.version_id + 1) if current is not None else 1
                method = ("delete" if deleted
                          else "create" if current is None or current.deleted else "update")
            resource = _with_meta(resource, version, now)
            body = orjson.dumps(resource).decode()
            if current is None:  # a plain row: nothing reads a new resource back as an object
                row = {"resource_type": rt, "id": rid, "class_name": class_name, "source_id": source_id,
                       "profile_id": profile_id, "category": category, "version_id": version, "last_updated": now,
                       "deleted": deleted, "body": body}
                buffer.insert(FhirResource.__table__, [row])
                buffer.resources[(rt, rid)] = row
            else:
                current.class_name, current.source_id = class_name, source_id
                current.profile_id, current.category = profile_id, category
                current.version_id, current.last_updated, current.deleted = version, now, deleted
                if not deleted:
                    current.body = body
                buffer.resources[(rt, rid)] = current
                # (statements send the rows the buffer holds first: this version's history row among them)
                if again:
                    self.session.execute(update(FhirHistory).where(
                        FhirHistory.resource_type == rt, FhirHistory.id == rid,
                        FhirHistory.version_id == version,
                    ).values(body=body).execution_options(synchronize_session=False))
                # a resource never stored has no index rows to clear
                self.session.execute(delete(FhirIndex).where(FhirIndex.resource_type == rt,
                                                             FhirIndex.resource_id == rid))
            history = None
            if not again:
                history = {"resource_type": rt, "id": rid, "version_id": version, "last_updated": now,
                           "deleted": deleted, "method": method, "body": None if deleted else body}
                buffer.insert(FhirHistory.__table__, [history])
            rows = [] if deleted else index_rows(resource, self.ctx.base)
            buffer.insert(FhirIndex.__table__, rows)
            if not again:  # (stored again by UPDATE, it is never rewritten in the buffer: its `sent` is past)
                buffer.versions[(rt, rid)] = write_buffer.Version(version, method, now, buffer.sent, history,
                                                                  rows)


    def _rewrite(self, buffer: write_buffer.WriteBuffer, made: write_buffer.Version, resource: dict[str, Any],
                 **columns: Any) -> None:
        """The version this scope made of the resource, whose rows still wait in the buffer, made again."""
        from gateway.fhir.extract import index_rows

        resource = _with_meta(resource, made.number, made.now)
        columns["body"] = body = orjson.dumps(resource).decode()
        row = buffer.resources[(resource["resourceType"], resource["id"])]
        if isinstance(row, dict):
            row.update(columns)
        else:  # a resource stored before the scope: the Session writes its object
            for key, value in columns.items():
                setattr(row, key, value)
        made.history["body"] = body
        rows = index_rows(resource, self.ctx.base)
        buffer.replace(FhirIndex.__table__, made.index, rows)
        made.index = rows


def _with_meta(resource: dict[str, Any], version: int, now) -> dict[str, Any]:
    """The resource with its meta.versionId and meta.lastUpdated."""
    meta = dict(resource.get("meta") or {})
    meta.update(versionId=str(version), lastUpdated=codec.iso(now))
    return {**resource, "meta": meta}
