"""The access matrix: every actor x every face, asserting EXACTLY the set of records the actor receives.

The world (tests/sharing/world.py) is built once per database through the public faces; what each actor
may see is computed from the world's declarative tables, never by calling the code under test. Each face
reports the labels it actually handed out, and the two sets must be equal (not merely non-empty)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

import pytest
from sqlalchemy.orm import sessionmaker

from gateway import create_app
from gateway.smart import clients as client_registry
from mappings.patient import blood_group_observation_id
from tests.conftest import APP_ID, MASTER_KEY, Parse, date, pointer
from tests.fhir.conftest import Fhir
from tests.sharing.world import (
    ACTORS, DERIVED, GRANTS, LAB_ATTACHMENT, LABELS, NATIVE_LABELS, PROFILES, PROVIDERS, RECORDS,
    SMART_PATIENT_SCOPE, SMART_SYSTEM_SCOPE, SMART_USER_SCOPE, FHIR_TYPE, Actor, class_of, profile_of, seen,
    visible,
)
from tests.smart.conftest import BASE, BearerFhir, Smart, client_credentials

PASSWORD = "pw-123456"
BODIES = {
    "Allergy": {"substance": "Peanut", "severity": "severe", "reaction": "Hives"},
    "Medication": {"name": "Metformin", "dose": "500 mg"},
    "LabResult": {"testName": "Glucose", "value": 98, "units": "mg/dL", "date": date("2025-09-20")},
    "Vaccination": {"vaccineName": "MMR", "dateAdministered": date("2020-01-02")},
    "EmergencyContact": {"name": "Jordan", "relationship": "spouse", "phone": "+1 555 0199"},
}


def ok(r, status: int = 200):
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:2000])
    return r.json


@dataclass
class World:
    client: object
    ids: dict[str, str] = field(default_factory=dict)  # label -> objectId
    parse: dict[str, Parse] = field(default_factory=dict)  # actor -> native client
    fhir: dict[str, Fhir] = field(default_factory=dict)  # actor -> FHIR client
    file_path: str = ""  # the document's file, without its signature

    def label_of(self, object_id: str) -> str | None:
        return next((k for k, v in self.ids.items() if v == object_id), None)

    def labels(self, object_ids) -> set[str]:
        return {label for oid in object_ids if (label := self.label_of(oid))}

    def ref(self, label: str) -> str:
        return f"{FHIR_TYPE[class_of(label)]}/{self.ids[label]}"

    def ref_labels(self, refs) -> set[str]:
        by_ref = {self.ref(label): label for label in LABELS}
        return {by_ref[r] for r in refs if r in by_ref}


def _signup(master: Parse, client, username: str, role: str) -> tuple[str, Parse]:
    made = ok(master.post("/users", {"username": username, "password": PASSWORD, "role": role}), 201)
    return made["objectId"], Parse(client, made["sessionToken"])


def build_world(client, session, rs384) -> World:
    w = World(client)
    master = Parse(client, master=True)
    users: dict[str, str] = {}
    for name, role in [("owner", "patient"), ("caregiver", "caregiver"), ("unrelated", "patient"),
                       *[(p, "provider") for p in PROVIDERS]]:
        users[name], w.parse[name] = _signup(master, client, name.replace("_", "-"), role)
    providers = {p: ok(master.post("/classes/Provider", {"name": f"Dr {p}", "user": pointer("_User", users[p])}),
                       201)["objectId"] for p in PROVIDERS}
    blood = {profile for profile, _category in DERIVED.values()}
    for label, owner in PROFILES.items():
        body = {"fullName": f"Person {label}", **({"bloodType": "O+"} if label in blood else {})}
        w.ids[label] = ok(w.parse[owner].post("/classes/Profile", body), 201)["objectId"]
    for label, (profile, _category) in DERIVED.items():
        w.ids[label] = blood_group_observation_id(w.ids[profile])
    owner_of = lambda label: w.parse[PROFILES[profile_of(label)]]  # noqa: E731
    stored = ok(client.post("/parse/files/report.txt", data=b"HbA1c 6.1 %\n", content_type="text/plain",
                            headers=owner_of("A.doc").headers()), 201)
    w.file_path = urlsplit(stored["url"]).path
    w.ids["A.doc"] = ok(owner_of("A.doc").post("/classes/MedicalDocument", {
        "profile": pointer("Profile", w.ids["A"]), "file": {"__type": "File", "name": stored["name"]},
        "documentType": "Lab report", "title": "Annual panel"}), 201)["objectId"]
    for label, (profile, cls) in RECORDS.items():
        if cls == "MedicalDocument":
            continue
        body = {**BODIES[cls], "profile": pointer("Profile", w.ids[profile])}
        if label in LAB_ATTACHMENT:
            body["attachment"] = pointer("MedicalDocument", w.ids[LAB_ATTACHMENT[label]])
        w.ids[label] = ok(owner_of(label).post(f"/classes/{cls}", body), 201)["objectId"]
    for label, (profile, provider, scope, level, state) in GRANTS.items():
        body = {"profile": pointer("Profile", w.ids[profile]), "provider": pointer("Provider", providers[provider]),
                "accessLevel": level, "scope": list(scope),
                "expiresAt": date("2020-01-01" if state == "expired" else "2099-01-01")}
        w.ids[label] = ok(owner_of(label).post("/classes/SharedAccess", body), 201)["objectId"]
        if state == "revoked":
            ok(owner_of(label).put(f"/classes/SharedAccess/{w.ids[label]}",
                                   {"revokedAt": date("2025-01-01T00:00:00.000Z")}))
    for name, p in w.parse.items():
        w.fhir[name] = Fhir(client, p.token)
    w.parse["master"], w.fhir["master"] = master, Fhir(client, master=True)
    w.parse["anonymous"], w.fhir["anonymous"] = Parse(client), Fhir(client)
    # SMART tokens of each kind
    smart = Smart(client, session)
    app = smart.register(scope=f"{SMART_PATIENT_SCOPE} {SMART_USER_SCOPE}", name="Family Health Diary")
    token = smart.login(app, SMART_PATIENT_SCOPE, "caregiver", patient=w.ids["K"])
    w.fhir["smart_patient"] = BearerFhir(client, token["access_token"])
    smart = Smart(client.application.test_client(), session)  # a fresh browser: nobody signed in
    token = smart.login(app, SMART_USER_SCOPE, "provider-active")
    w.fhir["smart_user"] = BearerFhir(client, token["access_token"])
    backend = smart.register(kind="private_key_jwt", jwks={"keys": [rs384.public_jwk]}, redirect_uris=(),
                             scope=SMART_SYSTEM_SCOPE, provider_id=providers["provider_active"], name="Clinic EHR")
    r = smart.token(None, client_credentials(rs384.assertion(backend.client_id), scope=SMART_SYSTEM_SCOPE))
    w.fhir["smart_system"] = BearerFhir(client, ok(r)["access_token"])
    return w


@pytest.fixture(scope="module")
def world(engine, tmp_path_factory, rs384):
    """The world, built once per database inside a transaction rolled back at the end of the module."""
    conn = engine.connect()
    outer = conn.begin()
    factory = sessionmaker(bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint")
    app = create_app({"DATABASE_URL": str(engine.url), "ENGINE": engine, "SESSION_FACTORY": factory,
                      "INSTANCE_PATH": str(tmp_path_factory.mktemp("matrix") / "instance"), "APP_ID": APP_ID,
                      "MASTER_KEY": MASTER_KEY, "BASE_URL": BASE, "TESTING": True})
    client_registry._jwks_cache.clear()
    session = factory()
    try:
        yield build_world(app.test_client(), session, rs384)
    finally:
        session.close()
        outer.rollback()
        conn.close()


# ---- the faces: what an actor actually receives, as labels ----

def native_get(w: World, actor: str) -> set[str]:
    p = w.parse[actor]
    return {label for label in NATIVE_LABELS
            if p.get(f"/classes/{class_of(label)}/{w.ids[label]}").status_code == 200}


def native_query(w: World, actor: str) -> set[str]:
    p = w.parse[actor]
    out: set[str] = set()
    for cls in sorted({class_of(label) for label in NATIVE_LABELS}):
        r = p.get(f"/classes/{cls}", params={"limit": "1000"})
        if r.status_code == 200:
            out |= w.labels(o["objectId"] for o in r.json["results"])
    return out


def native_include(w: World, actor: str) -> set[str]:
    """LabResults with their profile and attachment included: the results plus the objects resolved."""
    r = w.parse[actor].get("/classes/LabResult", params={"include": "profile,attachment", "limit": "1000"})
    if r.status_code != 200:
        return set()
    out: set[str] = set()
    for lab in r.json["results"]:
        out |= w.labels([lab["objectId"]])
        for key in ("profile", "attachment"):
            value = lab.get(key)
            if isinstance(value, dict) and value.get("__type") == "Object":
                out |= w.labels([value["objectId"]])
    return out


def file_download(w: World, actor: str) -> set[str]:
    """The document's file by its plain URL with the actor's own credentials (no signature)."""
    r = w.client.get(w.file_path, headers=w.parse[actor].headers())
    return {"A.doc"} if r.status_code == 200 and r.data == b"HbA1c 6.1 %\n" else set()


def _entries(bundle: dict, mode: str | None = None) -> list[str]:
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])
            if "resource" in e and (mode is None or e.get("search", {}).get("mode") == mode)]


def fhir_read(w: World, actor: str) -> set[str]:
    f = w.fhir[actor]
    return {label for label in LABELS if f.get(w.ref(label)).status_code == 200}


def fhir_search(w: World, actor: str) -> set[str]:
    out: set[str] = set()
    for rt in sorted(set(FHIR_TYPE.values()) - {"Consent"}):
        r = w.fhir[actor].get(rt, {"_count": "1000"})
        if r.status_code == 200:
            out |= w.ref_labels(_entries(r.json, "match"))
    return out


def fhir_include(w: World, actor: str) -> set[str]:
    r = w.fhir[actor].get("Observation", [("_include", "Observation:patient"),
                                          ("_include", "Observation:derived-from"), ("_count", "1000")])
    return w.ref_labels(_entries(r.json)) if r.status_code == 200 else set()


def fhir_revinclude(w: World, actor: str) -> set[str]:
    r = w.fhir[actor].get("Patient", [("_revinclude", "AllergyIntolerance:patient"), ("_count", "1000")])
    return w.ref_labels(_entries(r.json)) if r.status_code == 200 else set()


def everything(w: World, actor: str) -> set[str]:
    out: set[str] = set()
    for profile in PROFILES:
        r = w.fhir[actor].get(f"Patient/{w.ids[profile]}/$everything")
        if r.status_code == 200:
            out |= w.ref_labels(_entries(r.json))
    return out


def history(w: World, actor: str) -> set[str]:
    """Instance history of every record, and the type history of Observation and AllergyIntolerance."""
    f = w.fhir[actor]
    out = {label for label in LABELS if f.get(f"{w.ref(label)}/_history").status_code == 200}
    for rt in ("Observation", "AllergyIntolerance"):
        r = f.get(f"{rt}/_history", {"_count": "1000"})
        if r.status_code == 200:
            out |= {f"type:{label}" for label in w.ref_labels(_entries(r.json))}
    return out


def binary(w: World, actor: str) -> set[str]:
    r = w.fhir[actor].get(f"Binary/{w.ids['A.doc']}-v1", headers={"Accept": "text/plain"})
    return {"A.doc"} if r.status_code == 200 and r.data == b"HbA1c 6.1 %\n" else set()


def consent(w: World, actor: str) -> set[str]:
    r = w.fhir[actor].get("Consent", {"_count": "1000"})
    found = w.ref_labels(_entries(r.json, "match")) if r.status_code == 200 else set()
    read = {g for g in GRANTS if w.fhir[actor].get(w.ref(g)).status_code == 200}
    assert found == read, f"Consent search {sorted(found)} differs from Consent reads {sorted(read)}"
    return found


# ---- what each face must hand out, from the tables ----

def expect_include(a: Actor, observations=None) -> set[str]:
    """Observations (LabResults; on the FHIR face also the blood group) with their patient and attachment."""
    out = set()
    labs = [label for label, (_p, cls) in RECORDS.items() if cls == "LabResult"]
    for lab in labs + list(observations or ()):
        if visible(a, lab):
            out.add(lab)
            out |= {t for t in (profile_of(lab), LAB_ATTACHMENT.get(lab)) if t and visible(a, t)}
    return out


def expect_revinclude(a: Actor) -> set[str]:
    patients = {p for p in PROFILES if visible(a, p)}
    return patients | {r for r, (p, cls) in RECORDS.items() if cls == "Allergy" and p in patients and visible(a, r)}


def expect_everything(a: Actor) -> set[str]:
    patients = {p for p in PROFILES if visible(a, p)}
    return {label for label in seen(a) if profile_of(label) in patients}


def expect_history(a: Actor) -> set[str]:
    typed = {label for label in seen(a) if FHIR_TYPE[class_of(label)] in ("Observation", "AllergyIntolerance")}
    return seen(a) | {f"type:{label}" for label in typed}


def expect_document(a: Actor) -> set[str]:
    return {"A.doc"} & seen(a)


FACES: dict[str, tuple[Callable, Callable, bool]] = {
    # face: (what the actor receives, what it may receive, a native face?)
    "native_get": (native_get, lambda a: seen(a, NATIVE_LABELS), True),
    "native_query": (native_query, lambda a: seen(a, NATIVE_LABELS), True),
    "native_include": (native_include, expect_include, True),
    "file_download": (file_download, expect_document, True),
    "fhir_read": (fhir_read, lambda a: seen(a), False),
    "fhir_search": (fhir_search, lambda a: seen(a, [x for x in LABELS if x not in GRANTS]), False),
    "fhir_include": (fhir_include, lambda a: expect_include(a, DERIVED), False),
    "fhir_revinclude": (fhir_revinclude, expect_revinclude, False),
    "everything": (everything, expect_everything, False),
    "history": (history, expect_history, False),
    "binary": (binary, expect_document, False),
    "consent": (consent, lambda a: seen(a, list(GRANTS)), False),
}
CASES = [pytest.param(actor, face, id=f"{actor}-{face}") for actor, a in ACTORS.items()
         for face, (_got, _want, native) in FACES.items() if not (native and a.kind == "smart")]


@pytest.mark.parametrize("actor,face", CASES)
def test_exactly_the_allowed_set(world, actor, face):
    got, want, _native = FACES[face]
    received, allowed = got(world, actor), want(ACTORS[actor])
    assert received == allowed, (f"{actor} via {face}: received {sorted(received)}, allowed {sorted(allowed)}; "
                                 f"leaked {sorted(received - allowed)}, missing {sorted(allowed - received)}")


def test_the_world_is_what_the_tables_say(world):
    """Guard: every provider actor exists with the grants the table gives it, and nothing was left out."""
    assert set(world.ids) == set(LABELS)
    assert seen(ACTORS["provider_expired"]) == {"g.expired"}
    assert seen(ACTORS["provider_revoked"]) == {"g.revoked"}
    assert seen(ACTORS["unrelated"]) == set() and seen(ACTORS["anonymous"]) == set()
