"""Parse REST JSON values (Date, Pointer, File) <-> FHIR primitives and References.

The native record is exactly what the Parse-compatible API returns: Dates are
{"__type": "Date", "iso": "1985-01-15T00:00:00.000Z"}, Pointers {"__type": "Pointer", "className", "objectId"}
(or an included {"__type": "Object", ...} with the fields), Files {"__type": "File", "name", "url", ...}.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from .context import MappingContext

# FHIR date/dateTime/instant lexical forms (hl7.org/fhir/R4/datatypes.html#primitive).
_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?$"
)

# Native class -> FHIR resource type for literal references. Provider is resolved by its kind.
CLASS_REFERENCE_TYPE = {
    "Profile": "Patient",
    "Allergy": "AllergyIntolerance",
    "Vaccination": "Immunization",
    "Medication": "MedicationStatement",
    "LabResult": "Observation",
    "MedicalDocument": "DocumentReference",
    "SharedAccess": "Consent",
    "EmergencyContact": "RelatedPerson",
    "AuditLog": "AuditEvent",
}
REFERENCE_TYPE_CLASS = {v: k for k, v in CLASS_REFERENCE_TYPE.items()} | {
    "Practitioner": "Provider",
    "Organization": "Provider",
}


# ---- dates ---------------------------------------------------------------------------------------------


def to_instant(value: Any) -> datetime | None:
    """A native Date (or ISO string) as an aware UTC datetime."""
    if value is None:
        return None
    iso = value.get("iso") if isinstance(value, dict) else value
    if not iso:
        return None
    return parse_fhir_datetime(iso)


@lru_cache(maxsize=8192)
def parse_fhir_datetime(text: str) -> datetime:
    """First instant (UTC) of a FHIR date, partial date or dateTime: "1985" -> 1985-01-01T00:00:00Z.
    Kept per text (the answer is immutable): a resource written through FHIR has each of its dates parsed
    ~5 times on its way to the native row and back (from_fhir, to_fhir, the `_fhir` comparison)."""
    m = _PARTIAL.match(text)
    if m:
        return datetime(int(m[1]), int(m[2] or 1), int(m[3] or 1), tzinfo=UTC)
    m = _DATETIME.match(text)
    if not m:
        raise ValueError(f"not a FHIR date/dateTime: {text!r}")
    micro = int((m[7] or "0")[:6].ljust(6, "0"))
    dt = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6] or 0), micro)
    zone = m[8]
    if zone is None or zone == "Z":
        return dt.replace(tzinfo=UTC)
    sign = 1 if zone[0] == "+" else -1
    offset = sign * (int(zone[1:3]) * 60 + int(zone[4:6]))
    try:
        return (dt - timedelta(minutes=offset)).replace(tzinfo=UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 is in the year 10000 in UTC, which no date type holds
        raise ValueError(f"{text!r} is outside the years 0001-9999 in UTC") from None


def _day(dt: datetime) -> str:
    """YYYY-MM-DD with a four-digit year: strftime("%Y") writes year 1 as "1" on glibc, not FHIR's "0001"."""
    return "%04d-%02d-%02d" % (dt.year, dt.month, dt.day)


def _second(dt: datetime) -> str:
    return "%sT%02d:%02d:%02d" % (_day(dt), dt.hour, dt.minute, dt.second)


@lru_cache(maxsize=8192)
def iso(dt: datetime) -> str:
    """Parse's ISO form: UTC, milliseconds, "Z"."""
    dt = dt.astimezone(UTC)
    return f"{_second(dt)}.{dt.microsecond // 1000:03d}Z"


def date_value(text: str | None) -> dict[str, str] | None:
    """A FHIR date/dateTime as a native Date (a partial date becomes its first instant, UTC)."""
    if not text:
        return None
    return {"__type": "Date", "iso": iso(parse_fhir_datetime(text))}


def fhir_date(value: Any) -> str | None:
    """A native Date as a FHIR `date` (the UTC calendar day)."""
    dt = to_instant(value)
    return _day(dt) if dt else None


def fhir_datetime(value: Any) -> str | None:
    """A native Date as a FHIR `dateTime`: a bare day when it is midnight UTC (what a date-only entry
    stores), else the full instant. Both read back to the same native Date."""
    dt = to_instant(value)
    if dt is None:
        return None
    if (dt.hour, dt.minute, dt.second, dt.microsecond) == (0, 0, 0, 0):
        return _day(dt)
    return fhir_instant(value)


def fhir_instant(value: Any) -> str | None:
    """A native Date as a FHIR `instant` (always with time and zone)."""
    dt = to_instant(value)
    if dt is None:
        return None
    if dt.microsecond:
        return iso(dt)
    return _second(dt) + "Z"


# ---- pointers and references ---------------------------------------------------------------------------


def pointer(class_name: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": class_name, "objectId": object_id}


def pointer_id(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("objectId")
    return None


def reference_type(value: dict[str, Any]) -> str | None:
    """The FHIR resource type a native pointer (or included object) refers to."""
    class_name = value.get("className")
    if class_name == "Provider":
        # An included Provider tells us its kind; a bare pointer does not, and Practitioner is the
        # more common target of the elements that point at providers (performer, recipient).
        return "Organization" if value.get("kind") == "organization" else "Practitioner"
    return CLASS_REFERENCE_TYPE.get(class_name)


def reference(value: Any, ctx: MappingContext) -> dict[str, Any] | None:
    """A FHIR Reference for a native pointer: literal ("Patient/abc") when the class has a resource,
    else a logical reference by identifier (users and clients have no FHIR resource)."""
    if not isinstance(value, dict) or not value.get("objectId"):
        return None
    resource_type = reference_type(value)
    if resource_type:
        return {"reference": f"{resource_type}/{value['objectId']}"}
    return {"identifier": {"system": ctx.identifier_system(value["className"]), "value": value["objectId"]}}


def from_reference(ref: dict[str, Any] | None, ctx: MappingContext) -> dict[str, str] | None:
    """The native pointer for a FHIR Reference made by `reference` (or any literal one we map)."""
    if not ref:
        return None
    literal = ref.get("reference")
    if literal:
        parts = literal.split("/")
        if len(parts) >= 2 and parts[-1] and parts[-2] == "Organization":
            # A bare Provider pointer reads as Practitioner (reference_type), so an Organization comes
            # back as an included-object stub that carries its kind; it compares equal to the pointer.
            return {
                "__type": "Object",
                "className": "Provider",
                "objectId": parts[-1],
                "kind": "organization",
            }
        if len(parts) >= 2 and parts[-1] and parts[-2] in REFERENCE_TYPE_CLASS:
            return pointer(REFERENCE_TYPE_CLASS[parts[-2]], parts[-1])
        return None
    identifier = ref.get("identifier") or {}
    prefix = ctx.identifier_system("")
    system = identifier.get("system", "")
    if system.startswith(prefix) and identifier.get("value"):
        return pointer(system[len(prefix) :], identifier["value"])
    return None


def patient_reference(record: dict[str, Any]) -> dict[str, str] | None:
    object_id = pointer_id(record.get("profile"))
    return {"reference": f"Patient/{object_id}"} if object_id else None


def profile_pointer(ref: dict[str, Any] | None) -> dict[str, str] | None:
    literal = (ref or {}).get("reference", "")
    parts = literal.split("/")
    if len(parts) >= 2 and parts[-2] == "Patient":
        return pointer("Profile", parts[-1])
    return None


# ---- comparison ----------------------------------------------------------------------------------------


def comparable(value: Any) -> Any:
    """A form of a native value for equality checks: Dates as instants, pointers and included objects as
    (className, objectId), Files without their server-made url."""
    if isinstance(value, dict):
        kind = value.get("__type")
        if kind == "Date":
            return ("Date", to_instant(value))
        if kind in ("Pointer", "Object"):
            return ("Pointer", value.get("className"), value.get("objectId"))
        if kind == "File":
            return ("File",) + tuple(sorted((k, comparable(v)) for k, v in value.items() if k != "url"))
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def prune(record: dict[str, Any]) -> dict[str, Any]:
    """Only the keys that have values (from_fhir's contract)."""
    return {k: v for k, v in record.items() if v is not None and v != "" and v != [] and v != {}}
