"""Create, read, update and delete native objects, with Parse's update operators, ACLs, version history,
soft delete and the audit trail. Every decision about who may do what is gateway.access's.

Writes go through the write buffer (services/write_buffer.py): inside a Bundle's scope, its records and
everything derived from them reach the database as a few multi-row INSERTs, and what the policy answered
for the first record of a profile serves the next ones."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import delete as sql_delete, or_, select
from sqlalchemy.orm import Session

from gateway import access, audit, events
from gateway.access import Principal
from gateway.db import new_object_id, utcnow
from gateway.errors import Conflict, Forbidden, InvalidInput, InvalidType, NotFound, ValidationFailed
from gateway.models import (
    AclEntry, MedicalDocument, Profile, Provider, RecordVersion, SharedAccess, StoredFile, User,
)
from gateway.schema import ClassSpec, FieldSpec, class_spec
from gateway.services import codec, write_buffer
from gateway.services.files import attach_to_document
from gateway.services.inputs import refuse_nul
from gateway.services.fhir_store import FhirStore

_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
READONLY_BUILTINS = ("objectId", "createdAt", "updatedAt")
#: Classes whose writes can change what the policy answers (ownership, grants, providers, accounts): the
#: answers a write scope remembers are forgotten when one is written.
_POLICY_CLASSES = frozenset({Profile, SharedAccess, Provider, User})


def spec_for(class_name: str, p: Principal) -> ClassSpec:
    spec = class_spec(class_name)
    if spec is None:
        raise Forbidden(f"This user is not allowed to access non-existent class: {class_name}")
    return spec


@dataclass
class WriteResult:
    row: Any
    #: Fields Parse echoes back: defaults applied on create, results of __op operators on update.
    echo: dict[str, Any]


class ObjectService:
    def __init__(self, session: Session, principal: Principal, *, file_url: codec.FileUrl | None = None,
                 now: Callable[[], datetime] = utcnow):
        self.session = session
        self.p = principal
        self.file_url = file_url
        self.now = now

    # ---- reading ----

    def load(self, spec: ClassSpec, object_id: str, *, for_write: bool = False, delete: bool = False):
        """The row if the principal may see (or write) it; NotFound otherwise, whatever the reason."""
        refuse_nul((object_id,), "An objectId")
        model = spec.model
        rule = access.write_filter(model, self.p, delete=delete) if for_write else access.read_filter(model, self.p)
        stmt = select(model).where(model.object_id == object_id, rule)
        if model.__soft_delete__:
            stmt = stmt.where(model.deleted_at.is_(None))
        row = self.session.scalars(stmt).first()
        if row is None:
            raise NotFound("Object not found.")
        return row

    def encode(self, spec: ClassSpec, row) -> dict[str, Any]:
        return codec.encode(spec, row, file_url=self.file_url)

    # ---- writing ----

    def create(self, class_name: str, data: dict[str, Any], *, fhir: dict[str, Any] | None = None,
               object_id: str | None = None, fresh_id: bool = False) -> WriteResult:
        """Create from native JSON. The FHIR face also hands over `fhir` (elements without a column, kept
        losslessly) and may choose the id (FHIR update-as-create); `fresh_id` says the server just made
        that id (a transaction's POST entry), so, like an id made here, it needs no check for a clash.
        The row returned is the new object as written, outside the Session (write_buffer.add_new)."""
        spec = spec_for(class_name, self.p)
        access.require_authenticated(self.p)
        values, acl, _ = self._decode_body(spec, data, creating=True)
        echo = self._apply_defaults(spec, values)
        if spec.model is Provider and self.p.role == "provider" and values.get("user_id") is None:
            # A provider describing itself (e.g. POST /fhir/Practitioner, which has no login field).
            values["user_id"] = self.p.user_id
        self._check_required(spec, values)
        with write_buffer.scope(self.session) as buffer:
            self._check_references(spec, values, None, buffer)
            self._check_create(spec, values, buffer)
            if acl is not None and not access.may_set_acl(self.session, spec.model, self.p,
                                                          values.get("profile_id")):
                raise Forbidden("Only the owner may set an ACL.")
            now = self.now()
            if object_id is not None and not fresh_id and self.session.get(spec.model, object_id) is not None:
                raise Conflict(f"{spec.name} {object_id} already exists.")
            object_id = object_id or new_object_id()
            row = write_buffer.new_object(
                spec.model, object_id=object_id, created_at=now, updated_at=now, version=1, fhir=fhir,
                acl=acl if acl is not None else self._default_acl(spec, values, buffer),
                written_by=writer_of(self.p), **values)
            buffer.add_new(row)
            if spec.model is Profile:
                # A new profile changes no answer given so far (only changes and deletions do); its owner's
                # next writes to it (a Bundle's records after its Patient) need no policy query.
                buffer.memo[("profile-exists", row.object_id)] = True
                if self.p.user_id and row.user_id == self.p.user_id:
                    access.learn_new_profile(self.session, self.p.user_id, row.object_id)
            elif spec.model in _POLICY_CLASSES:
                buffer.forget()
            if spec.model is MedicalDocument:
                attach_to_document(self.session, row.file_name, row.object_id)
            self._sync_acl(spec, row, buffer, created=True)
            self._changed(spec, row, buffer, created=True)
            action = "share" if spec.model is SharedAccess else "create"
            audit.record(self.session, self.p, action, spec.name, row.object_id, profile_id=_profile_of(row))
        return WriteResult(row, echo)

    def update(self, class_name: str, object_id: str, data: dict[str, Any], *, fhir: Any = ...) -> WriteResult:
        """Update from native JSON (values and __op operators); the FHIR face also replaces `fhir`."""
        spec = spec_for(class_name, self.p)
        access.require_authenticated(self.p)
        with write_buffer.scope(self.session) as buffer:
            return self._update(spec, object_id, data, fhir, buffer)

    def _update(self, spec: ClassSpec, object_id: str, data: dict[str, Any], fhir: Any,
                buffer: write_buffer.WriteBuffer) -> WriteResult:
        row = self.load(spec, object_id, for_write=True)  # (its SELECT flushes whatever is pending first)
        prior = self._version_of(spec, row)
        values, acl, echo = self._decode_body(spec, data, creating=False, row=row)
        if "profile_id" in values and values["profile_id"] != getattr(row, "profile_id", None) and not self.p.master:
            raise Forbidden("A record cannot be moved to another profile.")
        self._check_references(spec, values, row, buffer)
        if acl is not None and not access.may_set_acl(self.session, spec.model, self.p, getattr(row, "profile_id", None), row):
            raise Forbidden("Only the owner may set an ACL.")
        if spec.model is MedicalDocument and "file_name" in values and values["file_name"] != row.file_name:
            # A new file is a new version of the document; the earlier file stays stored (DESIGN.md).
            values["doc_version"] = row.doc_version + 1
        revoking = spec.model is SharedAccess and values.get("revoked_at") and row.revoked_at is None
        for attr, value in values.items():
            setattr(row, attr, value)
        if acl is not None:
            row.acl = acl
        if fhir is not ...:
            row.fhir = fhir
        for name, f in spec.fields.items():
            if f.required and getattr(row, f.attr) is None:
                raise ValidationFailed(f"{name} is required")
        row.updated_at = self.now()
        row.version += 1
        row.written_by = writer_of(self.p)
        self.session.flush()
        if spec.model in _POLICY_CLASSES:
            buffer.forget()
        if spec.model is MedicalDocument:
            attach_to_document(self.session, row.file_name, row.object_id)
        if acl is not None:
            self._sync_acl(spec, row, buffer)
        buffer.insert(RecordVersion.__table__, [prior])
        self._changed(spec, row, buffer)
        audit.record(self.session, self.p, "revoke" if revoking else "update", spec.name, row.object_id,
                     profile_id=_profile_of(row))
        return WriteResult(row, echo)

    def delete(self, class_name: str, object_id: str) -> None:
        spec = spec_for(class_name, self.p)
        access.require_authenticated(self.p)
        with write_buffer.scope(self.session) as buffer:
            self._delete(spec, object_id, buffer)

    def _delete(self, spec: ClassSpec, object_id: str, buffer: write_buffer.WriteBuffer) -> None:
        row = self.load(spec, object_id, for_write=True, delete=True)
        profile_id = _profile_of(row)
        if spec.model in _POLICY_CLASSES:
            buffer.forget()
        if spec.model.__soft_delete__:
            buffer.insert(RecordVersion.__table__, [self._version_of(spec, row)])
            row.deleted_at = self.now()
            row.updated_at = row.deleted_at
            row.version += 1
            self.session.flush()
            self._changed(spec, row, buffer, deleted=True)
        else:
            if spec.model is User:
                _check_user_deletable(self.session, row.object_id)
            buffer.insert(RecordVersion.__table__, [self._version_of(spec, row)])
            # Audit first: the row names its actor, and the actor may be the account being deleted
            # (the foreign key then becomes NULL; the summary keeps the id). Flushed before the DELETE: one
            # flush would run the DELETE before the INSERT.
            audit.record(self.session, self.p, "delete", spec.name, object_id, profile_id=profile_id)
            buffer.flush()
            self.session.execute(sql_delete(AclEntry).where(
                AclEntry.class_name == spec.name, AclEntry.object_id == row.object_id))
            self.session.delete(row)
            self.session.flush()
            return
        action = "revoke" if spec.model is SharedAccess else "delete"
        audit.record(self.session, self.p, action, spec.name, object_id, profile_id=profile_id)

    # ---- helpers ----

    def _decode_body(self, spec: ClassSpec, data: dict[str, Any], *, creating: bool, row=None):
        values: dict[str, Any] = {}
        echo: dict[str, Any] = {}
        acl = None
        for name, raw in data.items():
            if name == "ACL":
                acl = validate_acl(raw)
                continue
            if name in READONLY_BUILTINS:
                if name != "objectId" and not (isinstance(raw, dict) and raw.get("__type") == "Date"):
                    raise InvalidType(f"schema mismatch for {spec.name}.{name}; expected Date but got {codec.describe(raw)}")
                raise InvalidInput(f"{name} is managed by the server.", parse_code=105)
            f = spec.fields.get(name)
            if f is None or not _FIELD_NAME.match(name):
                raise Forbidden(f"Permission denied for action addField on class {spec.name}.")
            if f.server_managed and not self.p.master:
                raise Forbidden(f"{name} is managed by the server.")
            if isinstance(raw, dict) and "__op" in raw:
                if creating and raw["__op"] == "Delete":
                    continue
                result = apply_op(spec, f, raw, None if creating else _current(f, row))
                values.update(codec.decode_field(spec, f, result))
                if raw["__op"] != "Delete":
                    echo[name] = result
                continue
            values.update(codec.decode_field(spec, f, raw))
        return values, acl, echo

    def _apply_defaults(self, spec: ClassSpec, values: dict[str, Any]) -> dict[str, Any]:
        echo = {}
        for name, f in spec.fields.items():
            if f.default is None or values.get(f.attr) is not None:
                continue
            if f.default == "now":
                values[f.attr] = self.now()
                echo[name] = codec.date_json(values[f.attr])
            elif f.default == "caller":
                if self.p.user_id:
                    values[f.attr] = self.p.user_id
                    echo[name] = codec.pointer_json(f.target, self.p.user_id)
            else:
                values[f.attr] = f.default
                echo[name] = f.default
        return echo

    def _check_required(self, spec: ClassSpec, values: dict[str, Any]) -> None:
        for name, f in spec.fields.items():
            if f.required and values.get(f.attr) is None:
                raise ValidationFailed(f"{name} is required")
        if spec.model is SharedAccess and not (values.get("grantee_id") or values.get("provider_id")):
            raise ValidationFailed("grantee or provider is required")

    def _check_references(self, spec: ClassSpec, values: dict[str, Any], row,
                          buffer: write_buffer.WriteBuffer) -> None:
        """Pointers must name objects the caller can see; a new file must be the caller's own upload."""
        for name, f in spec.fields.items():
            value = values.get(f.attr)
            if value is None or (row is not None and getattr(row, f.attr) == value):
                continue
            if f.type == "Pointer" and f.target != "Profile":
                target = class_spec(f.target)
                model = target.model
                stmt = select(model.object_id).where(model.object_id == value)
                if f.target != "_User":  # users are named by id in grants; they are not readable by others
                    stmt = stmt.where(access.read_filter(model, self.p))
                if model.__soft_delete__:
                    stmt = stmt.where(model.deleted_at.is_(None))
                if self.session.scalar(stmt) is None:
                    raise InvalidInput(f"{name} points to an object that does not exist.", parse_code=106)
            if f.type == "Pointer" and f.target == "Profile":
                # Every record of a Bundle names the same profile: asked once per write scope.
                exists_ = access.known_owner(self.session, value) is not None or buffer.remember(
                    ("profile-exists", value), lambda: self.session.scalar(select(Profile.object_id).where(
                        Profile.object_id == value, Profile.deleted_at.is_(None))) is not None)
                if not exists_:
                    raise Forbidden(f"Permission denied for action create on class {spec.name}.")
            if f.type == "File":
                stored = self.session.get(StoredFile, value)
                if stored is None or stored.deleted_at is not None:
                    raise InvalidInput(f"{name} names a file that does not exist.", parse_code=106)
                if not self.p.master and stored.created_by_id != self.p.user_id:
                    raise Forbidden(f"{name} must be a file you uploaded.")
                if stored.document_id is not None and (row is None or stored.document_id != row.object_id):
                    raise Forbidden(f"{name} already belongs to another document.")

    def _check_create(self, spec: ClassSpec, values: dict[str, Any], buffer: write_buffer.WriteBuffer) -> None:
        """access.check_create, asked once per write scope for the same inputs (it reads the class, the
        caller, and the values' profile and user)."""
        key = ("check-create", spec.model, self.p, values.get("profile_id"), values.get("user_id"))
        buffer.remember(key, lambda: access.check_create(self.session, spec.model, self.p, values) or True)

    def _default_acl(self, spec: ClassSpec, values: dict[str, Any], buffer: write_buffer.WriteBuffer) -> dict:
        """access.default_acl, asked once per write scope for the same inputs (class, caller, profile, user)."""
        key = ("default-acl", spec.model, self.p, values.get("profile_id"), values.get("user_id"))
        acl = buffer.remember(key, lambda: access.default_acl(self.session, spec.model, self.p, values))
        return {principal: dict(rights) for principal, rights in acl.items()}

    def _sync_acl(self, spec: ClassSpec, row, buffer: write_buffer.WriteBuffer, *, created: bool = False) -> None:
        if not created:  # a new object has no entries yet
            self.session.execute(sql_delete(AclEntry).where(
                AclEntry.class_name == spec.name, AclEntry.object_id == row.object_id))
        buffer.insert(AclEntry.__table__, [
            {"class_name": spec.name, "object_id": row.object_id, "principal": principal,
             "can_read": bool(rights.get("read")), "can_write": bool(rights.get("write"))}
            for principal, rights in (row.acl or {}).items()])

    @staticmethod
    def _version_of(spec: ClassSpec, row) -> dict[str, Any]:
        """The record_version row of the version a change is about to replace (DESIGN.md: every change keeps
        the prior version). The current version is the record's own row: a new record writes none."""
        return {"class_name": spec.name, "object_id": row.object_id, "version": row.version,
                "recorded_at": row.updated_at, "deleted": getattr(row, "deleted_at", None) is not None,
                "data": codec.encode(spec, row, with_fhir=True)}

    def _changed(self, spec: ClassSpec, row, buffer: write_buffer.WriteBuffer, *, deleted: bool = False,
                 created: bool = False) -> None:
        """Bring the FHIR view of the record up to date in the same transaction, and tell listeners."""
        data = codec.encode(spec, row, with_fhir=True)
        FhirStore(self.session).sync(spec.name, row, deleted=deleted, created=created, encoded=data)
        kind = "delete" if deleted else ("create" if row.version == 1 else "update")
        events.publish(self.session, events.ChangeEvent(spec.name, row.object_id, _profile_of(row), kind, row.version))


def _check_user_deletable(session: Session, user_id: str) -> None:
    """An account that records still point to (its profiles, kept deleted or not for history; grants it
    made or received; a provider entry) cannot be removed without breaking that history."""
    if session.scalar(select(Profile.object_id).where(Profile.user_id == user_id, Profile.deleted_at.is_(None)).limit(1)):
        raise Forbidden("This user still owns profiles; delete or transfer them first.")
    referenced = (
        select(Profile.object_id).where(Profile.user_id == user_id),
        select(SharedAccess.object_id).where(or_(SharedAccess.grantee_id == user_id,
                                                 SharedAccess.created_by_id == user_id)),
        select(Provider.object_id).where(Provider.user_id == user_id),
    )
    if any(session.scalar(q.limit(1)) for q in referenced):
        raise Forbidden("This account is referenced by health records or grants and cannot be deleted.")


def writer_of(p: Principal) -> str:
    if p.user_id:
        return p.user_id
    return f"client:{p.client_id}" if p.client_id else "master"


def _profile_of(row) -> str | None:
    if isinstance(row, Profile):
        return row.object_id
    return getattr(row, "profile_id", None)


def _current(f: FieldSpec, row) -> Any:
    return codec.encode_field(f, row)


def validate_acl(raw: Any) -> dict[str, dict[str, bool]]:
    """Parse's ACL shape, strictly: {principal: {"read": bool, "write": bool}}."""
    if not isinstance(raw, dict):
        raise InvalidInput("ACL must be an object", parse_code=123)
    out = {}
    for principal, rights in raw.items():
        if (not isinstance(principal, str) or not principal or len(principal) > 64 or "\x00" in principal
                or not isinstance(rights, dict)):
            raise InvalidInput("invalid ACL entry", parse_code=123)
        entry = {}
        for right, allowed in rights.items():
            if right not in ("read", "write") or not isinstance(allowed, bool):
                raise InvalidInput(f"invalid permission {right!r} in ACL", parse_code=123)
            if allowed:
                entry[right] = True
        if entry:
            out[principal] = entry
    return out


def apply_op(spec: ClassSpec, f: FieldSpec, op: dict[str, Any], current: Any) -> Any:
    """Parse's update operators: Increment, Add, AddUnique, Remove, Delete."""
    kind = op.get("__op")
    if kind == "Delete":
        return None
    if kind == "Increment":
        amount = op.get("amount")
        if f.type not in ("Number", "Mixed") or isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise InvalidType(f"Cannot increment {spec.name}.{f.name}")
        if current is not None and not isinstance(current, (int, float)):
            raise InvalidType(f"Cannot increment a non-number {spec.name}.{f.name}")
        return (current or 0) + amount
    if kind in ("Add", "AddUnique", "Remove"):
        objects = op.get("objects")
        if f.type != "Array":
            raise InvalidType(f"schema mismatch for {spec.name}.{f.name}; expected {f.type} but got Array")
        if not isinstance(objects, list):
            raise InvalidInput("objects to add must be an array")
        items = list(current or [])
        if kind == "Add":
            return items + objects
        if kind == "AddUnique":
            for o in objects:  # each value once, even when `objects` repeats it
                if o not in items:
                    items.append(o)
            return items
        return [i for i in items if i not in objects]
    raise InvalidInput(f"Unknown operator: {kind}", parse_code=107)
