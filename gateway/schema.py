"""The native class registry, read off the models' `parse_field` column info (see models/base.py).

Validation, the `where` translator, serialization and `/schemas` all ask this registry, so a field is
described once, on its column.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import inspect

from gateway.models import MODELS, Record

#: Fields every class has (Parse's built-ins).
BUILTIN_FIELDS = {
    "objectId": {"type": "String"},
    "createdAt": {"type": "Date"},
    "updatedAt": {"type": "Date"},
    "ACL": {"type": "ACL"},
}
BUILTIN_ATTRS = {"objectId": "object_id", "createdAt": "created_at", "updatedAt": "updated_at"}

#: Names from the seed's second schema, accepted as aliases of the canonical classes.
CLASS_ALIASES = {"HealthDocument": "MedicalDocument", "Immunization": "Vaccination", "Consent": "SharedAccess"}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str  # String Number Boolean Date Pointer File Array Object Mixed
    attr: str
    required: bool = False
    target: str | None = None
    default: Any = None
    choices: tuple[str, ...] | None = None
    item_choices: tuple[str, ...] | None = None
    server_managed: bool = False
    text_attr: str | None = None
    #: The column's length limit (VARCHAR(n)), checked on input so PostgreSQL never refuses a value.
    max_length: int | None = None

    def schema_json(self) -> dict[str, Any]:
        """The field as Parse's /schemas shows it. Mixed (number or text) shows as Object: Parse has no union."""
        out: dict[str, Any] = {"type": "Object" if self.type == "Mixed" else self.type}
        if self.target:
            out["targetClass"] = self.target
        if self.required:
            out["required"] = True
        if self.default is not None and self.default not in ("now", "caller"):
            out["defaultValue"] = self.default
        return out


@dataclass(frozen=True)
class ClassSpec:
    name: str
    model: type[Record]
    fields: dict[str, FieldSpec] = field(default_factory=dict)

    @property
    def category(self) -> str | None:
        return self.model.__category__

    @property
    def has_profile(self) -> bool:
        return "profile" in self.fields and self.name != "AuditLog"

    def schema_json(self) -> dict[str, Any]:
        fields = dict(BUILTIN_FIELDS)
        fields.update({name: f.schema_json() for name, f in self.fields.items()})
        if self.name == "_User":
            fields["password"] = {"type": "String"}
        return {
            "className": self.name,
            "fields": fields,
            "classLevelPermissions": _CLP,
            "indexes": {"_id_": {"_id": 1}},
        }


# Class-level permissions as /schemas reports them: access is decided per row by gateway/access.py, so
# every operation is open to authenticated users at class level and schema changes are master only.
_CLP = {
    "find": {"requiresAuthentication": True}, "count": {"requiresAuthentication": True},
    "get": {"requiresAuthentication": True}, "create": {"requiresAuthentication": True},
    "update": {"requiresAuthentication": True}, "delete": {"requiresAuthentication": True},
    "addField": {}, "protectedFields": {"*": []},
}


@cache
def registry() -> dict[str, ClassSpec]:
    classes = {}
    for name, model in MODELS.items():
        fields = {}
        for attr in inspect(model).column_attrs:
            info = attr.columns[0].info.get("parse")
            if info:
                fields[info["name"]] = FieldSpec(
                    name=info["name"], type=info["type"], attr=attr.key, required=info["required"],
                    target=info["target"], default=info["default"], choices=info["choices"],
                    item_choices=info["item_choices"], server_managed=info["server_managed"],
                    text_attr=info["text_attr"], max_length=getattr(attr.columns[0].type, "length", None),
                )
        classes[name] = ClassSpec(name=name, model=model, fields=fields)
    return classes


def class_spec(name: str) -> ClassSpec | None:
    return registry().get(CLASS_ALIASES.get(name, name))
