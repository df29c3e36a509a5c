"""Binary: a document's file as its raw bytes with their content type, or as a Binary resource when the
client asks for FHIR JSON; older versions stay readable; access follows the DocumentReference."""
from __future__ import annotations

import base64

from tests.fhir.conftest import body, outcome, pointer

PDF = b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"


def upload(p, name: str, data: bytes, content_type: str) -> str:
    r = p.parse.client.post(f"/parse/files/{name}", data=data, headers=p.parse.headers(), content_type=content_type)
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.json["name"]


def make_document(alice) -> str:
    name = upload(alice, "discharge.pdf", PDF, "application/pdf")
    r = alice.parse.post("/classes/MedicalDocument", {
        "profile": pointer("Profile", alice.patient_id), "file": {"__type": "File", "name": name},
        "documentType": "Discharge summary", "title": "Discharge summary, Boston General"})
    assert r.status_code == 201, r.json
    return r.json["objectId"]


def test_document_reference_points_to_binary(alice):
    doc = make_document(alice)
    ref = alice.fhir.read(f"DocumentReference/{doc}")
    att = ref["content"][0]["attachment"]
    assert att["contentType"] == "application/pdf" and att["size"] == len(PDF)
    assert att["url"].endswith(f"/fhir/Binary/{doc}-v1")
    raw = alice.fhir.get(f"Binary/{doc}-v1", headers={"Accept": "application/pdf"})
    assert raw.status_code == 200 and raw.data == PDF and raw.mimetype == "application/pdf"
    assert raw.headers["X-Content-Type-Options"] == "nosniff"
    as_json = body(alice.fhir.get(f"Binary/{doc}-v1"))  # Accept: application/fhir+json
    assert as_json["resourceType"] == "Binary" and as_json["contentType"] == "application/pdf"
    assert base64.b64decode(as_json["data"]) == PDF
    assert body(alice.fhir.get(f"Binary/{doc}-v1", params={"_format": "json"},
                               headers={"Accept": "*/*"}))["resourceType"] == "Binary"


def test_new_file_is_a_new_version_and_the_old_stays(alice):
    doc = make_document(alice)
    name2 = upload(alice, "discharge-v2.txt", b"corrected summary\n", "text/plain")
    alice.parse.put(f"/classes/MedicalDocument/{doc}", {"file": {"__type": "File", "name": name2}})
    ref = alice.fhir.read(f"DocumentReference/{doc}")
    assert ref["content"][0]["attachment"]["url"].endswith(f"/Binary/{doc}-v2")
    v2 = alice.fhir.get(f"Binary/{doc}-v2", headers={"Accept": "text/plain"})
    assert v2.data == b"corrected summary\n" and v2.mimetype == "text/plain"
    v1 = alice.fhir.get(f"Binary/{doc}-v1", headers={"Accept": "*/*"})
    assert v1.data == PDF
    outcome(alice.fhir.get(f"Binary/{doc}-v7"), 404)


def test_binary_access(alice, bob, anonymous):
    doc = make_document(alice)
    outcome(bob.fhir.get(f"Binary/{doc}-v1"), 404)
    outcome(anonymous.get(f"Binary/{doc}-v1"), 401)
    outcome(alice.fhir.get("Binary/nosuchdoc0-v1"), 404)
    alice.parse.delete(f"/classes/MedicalDocument/{doc}")
    outcome(alice.fhir.get(f"Binary/{doc}-v1"), 410)
