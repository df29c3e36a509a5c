"""Property: for generated native records of every class, native -> FHIR -> native is the identity on the
fields FHIR carries (no `_fhir` needed), and every generated FHIR resource is valid R4."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from golden_cases import GOLDEN_CTX as CTX
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mappings
from conformance.validate import validate_r4
from mappings import patient
from mappings.audit_event import ACTIONS
from mappings.consent import SCOPE_CLASSES
from mappings.native import comparable, iso
from mappings.providers import CONTACT_TELECOM
from mappings.terminology import ALLERGENS, BLOOD_GROUPS, LAB_TESTS, MEDICATIONS, UCUM_UNITS, VACCINES

# FHIR `string` allows any non-whitespace character plus space, tab, CR, LF (hl7.org/fhir/R4/datatypes.html).
TEXT = (
    st.text(st.characters(categories=["L", "N", "P", "S"], include_characters=" "), min_size=1, max_size=40)
    .map(str.strip)
    .filter(bool)
)
OBJECT_ID = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=10, max_size=10
)
INSTANT = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
DAY = st.dates(min_value=datetime(1900, 1, 1).date(), max_value=datetime(2100, 1, 1).date())
DATE = INSTANT.map(lambda d: {"__type": "Date", "iso": iso(d)})
MIDNIGHT = DAY.map(lambda d: {"__type": "Date", "iso": f"{d.isoformat()}T00:00:00.000Z"})
ANY_DATE = st.one_of(DATE, MIDNIGHT)


def known_or_free(table) -> st.SearchStrategy[str]:
    """Names the code table knows (coded) or free text (text-only): both must round-trip."""
    return st.one_of(st.sampled_from(sorted(table.by_name)), TEXT)


def pointer(class_name: str) -> st.SearchStrategy[dict]:
    return OBJECT_ID.map(lambda i: {"__type": "Pointer", "className": class_name, "objectId": i})


def record(**fields) -> st.SearchStrategy[dict]:
    """A native record: objectId/createdAt/updatedAt plus fields; optional ones may be absent."""
    required = {k: v for k, v in fields.items() if not k.endswith("_")}
    optional = {k[:-1]: v for k, v in fields.items() if k.endswith("_")}
    server = {"objectId": OBJECT_ID, "createdAt": INSTANT.map(iso), "updatedAt": INSTANT.map(iso)}
    return st.fixed_dictionaries({**server, **required}, optional=optional)


PROFILE = record(
    user=pointer("_User"),
    fullName=TEXT,
    birthDate_=MIDNIGHT,
    gender_=st.sampled_from(["male", "female", "other", "unknown"]),
    bloodType_=known_or_free(BLOOD_GROUPS),
    primaryCareProvider_=TEXT,
    notes_=TEXT,
)
ALLERGY = record(
    profile=pointer("Profile"),
    substance=known_or_free(ALLERGENS),
    severity=st.sampled_from(["mild", "moderate", "severe"]),
    reaction=TEXT,
    recordedAt=ANY_DATE,
    isActive=st.booleans(),
    notes_=TEXT,
    onsetDate_=ANY_DATE,
)
VACCINATION = record(
    profile=pointer("Profile"),
    vaccineName=known_or_free(VACCINES),
    dateAdministered=ANY_DATE,
    dose_=st.one_of(TEXT, st.integers(1, 10)),
    lotNumber_=TEXT,
    provider_=TEXT,
    performer_=pointer("Provider"),
    nextDoseDate_=ANY_DATE,
    proofDocument_=pointer("MedicalDocument"),
)
MEDICATION = record(
    profile=pointer("Profile"),
    name=known_or_free(MEDICATIONS),
    active=st.booleans(),
    dose_=st.one_of(
        TEXT,
        st.builds(lambda n, u: f"{n} {u}", st.integers(1, 1000), st.sampled_from(["mg", "mL", "g", "mcg"])),
    ),
    frequency_=st.one_of(TEXT, st.sampled_from(["twice daily", "once daily", "every morning"])),
    instructions_=TEXT,
    startDate_=ANY_DATE,
    endDate_=ANY_DATE,
)
NUMBER = st.one_of(
    st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: round(f, 3))
)
RANGE = st.one_of(
    TEXT,
    st.builds(lambda a, b: f"{a}-{b}", st.integers(0, 500), st.integers(0, 500)),
    st.builds(lambda op, b: f"{op}{b}", st.sampled_from(["<", ">", "<=", ">="]), st.integers(0, 500)),
)
LAB_NUMERIC = record(
    profile=pointer("Profile"),
    testName=known_or_free(LAB_TESTS),
    value=NUMBER,
    date=ANY_DATE,
    units_=st.one_of(st.sampled_from(sorted(UCUM_UNITS.by_name)), TEXT),
    referenceRange_=RANGE,
    attachment_=pointer("MedicalDocument"),
)
# A text value has no unit in FHIR (valueString), so text results are generated without units.
LAB_TEXT = record(
    profile=pointer("Profile"),
    testName=known_or_free(LAB_TESTS),
    value=TEXT.filter(lambda t: not t.replace(".", "").replace("-", "").isdigit()),
    date=ANY_DATE,
    referenceRange_=RANGE,
)
FILE = st.fixed_dictionaries(
    {"__type": st.just("File"), "name": TEXT, "url": st.just("http://x/parse/files/a")},
    optional={
        "contentType": st.sampled_from(["application/pdf", "image/jpeg"]),
        "size": st.integers(0, 10**9),
        "hash": st.just("2jmj7l5rSw0yVb/vlWAYkK/YBwk="),
    },
)
DOCUMENT = record(
    profile=pointer("Profile"),
    file=FILE,
    documentType=TEXT,
    title=TEXT,
    uploadedAt=DATE,
    isShared=st.booleans(),
    description_=TEXT,
    tags_=st.lists(TEXT, min_size=1, max_size=4),
    version_=st.integers(1, 50),
)
SHARE = record(
    profile=pointer("Profile"),
    grantee=pointer("_User"),
    accessLevel=st.sampled_from(["read", "write"]),
    createdBy=pointer("_User"),
    provider_=pointer("Provider"),
    scope_=st.lists(st.sampled_from(sorted(SCOPE_CLASSES)), min_size=1, unique=True),
    expiresAt_=ANY_DATE,
    revokedAt_=ANY_DATE,
)
CONTACT = record(profile=pointer("Profile"), name=TEXT, relationship=TEXT, phone=TEXT, notes_=TEXT)
CONTACT_OBJECT = st.dictionaries(st.sampled_from(sorted(CONTACT_TELECOM) + ["address"]), TEXT, min_size=1)
PROVIDER = record(
    name=TEXT,
    kind=st.sampled_from(["practitioner", "organization"]),
    systemId_=TEXT,
    contact_=CONTACT_OBJECT,
    user_=pointer("_User"),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
AUDIT = record(
    actor=st.one_of(pointer("_User"), pointer("_Client")),
    entityType=st.sampled_from(
        ["Allergy", "Profile", "Provider", "_User", "SharedAccess", "MedicalDocument"]
    ),
    entityId=OBJECT_ID,
    action=st.one_of(st.sampled_from(sorted(ACTIONS)), TEXT),
    summary=TEXT,
    profile_=pointer("Profile"),
    metadata_=st.one_of(
        st.dictionaries(TEXT, JSON, min_size=1, max_size=4),
        # a transaction's grouped write: each listed record becomes an AuditEvent.entity of its own
        st.fixed_dictionaries({"interaction": st.just("transaction"), "entities": st.dictionaries(
            st.sampled_from(["Allergy", "LabResult", "Profile", "Provider"]),
            st.lists(OBJECT_ID, min_size=1, max_size=3, unique=True), min_size=1, max_size=3)}),
    ),
)

CLASSES = {
    "Profile": PROFILE,
    "Allergy": ALLERGY,
    "Vaccination": VACCINATION,
    "Medication": MEDICATION,
    "LabResult": st.one_of(LAB_NUMERIC, LAB_TEXT),
    "MedicalDocument": DOCUMENT,
    "SharedAccess": SHARE,
    "EmergencyContact": CONTACT,
    "Provider": PROVIDER,
    "AuditLog": AUDIT,
}
GENERATED = st.sampled_from(sorted(CLASSES)).flatmap(lambda c: st.tuples(st.just(c), CLASSES[c]))


def carried(class_name: str, native: dict, module) -> dict:
    """The native fields FHIR carries (a File's url is made by the native face)."""
    expected = {k: v for k, v in native.items() if k not in module.NATIVE_ONLY}
    if "file" in expected:
        expected["file"] = {k: v for k, v in expected["file"].items() if k != "url"}
    return expected


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(GENERATED)
def test_native_fhir_native_is_identity(generated):
    class_name, native = generated
    resource = mappings.to_fhir(class_name, native, CTX)
    assert validate_r4(resource) == [], resource
    back = mappings.from_fhir(resource["resourceType"], resource, CTX)
    assert "_fhir" not in back, back.get("_fhir")
    module = mappings.MODULES[resource["resourceType"]]
    if "file" in back:
        back["file"] = {k: v for k, v in back["file"].items() if k != "url"}
    assert comparable(back) == comparable(carried(class_name, native, module))


@settings(max_examples=100, deadline=None)
@given(PROFILE)
def test_blood_type_round_trips_through_its_observation(profile):
    observation = patient.blood_group_observation(profile, CTX)
    if not profile.get("bloodType"):
        assert observation is None
        return
    assert validate_r4(observation) == []
    assert mappings.class_for_resource(observation) == "Profile"
    assert mappings.from_fhir("Observation", observation, CTX) == {
        "objectId": profile["objectId"],
        "bloodType": profile["bloodType"],
    }


@settings(max_examples=100, deadline=None)
@given(SHARE, st.integers(-1000, 1000))
def test_consent_status_follows_expiry_and_revocation(share, days):
    ctx = type(CTX)(base_url=CTX.base_url, now=CTX.now + timedelta(days=days))
    consent = mappings.to_fhir("SharedAccess", share, ctx)
    expires = share.get("expiresAt")
    expired = expires is not None and datetime.fromisoformat(expires["iso"]) <= ctx.now
    assert consent["status"] == ("inactive" if share.get("revokedAt") or expired else "active")
