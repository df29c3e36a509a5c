"""Binary: a document's file as its raw bytes with their content type, or as a Binary resource when the
client asks for FHIR JSON; older versions stay readable; access follows the DocumentReference."""
from __future__ import annotations

import base64

from sqlalchemy import func, select, update

from gateway.errors import UnsupportedMediaType
from gateway.fhir.outcomes import from_error
from gateway.models import FileBlob, MedicalDocument, StoredFile
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


CSP = "default-src 'none'; sandbox"


def test_binary_responses_say_nosniff_csp_and_how_to_show_the_file(alice):
    doc = make_document(alice)
    raw = alice.fhir.get(f"Binary/{doc}-v1", headers={"Accept": "*/*"})
    assert raw.headers["Content-Type"] == "application/pdf"
    assert raw.headers["Content-Disposition"] == 'inline; filename="discharge.pdf"'  # a PDF may be shown
    assert raw.headers["Content-Security-Policy"] == CSP and raw.headers["X-Content-Type-Options"] == "nosniff"
    name = upload(alice, "summary.txt", b"corrected summary\n", "Text/Plain; charset=UTF-8")
    alice.parse.put(f"/classes/MedicalDocument/{doc}", {"file": {"__type": "File", "name": name}})
    text = alice.fhir.get(f"Binary/{doc}-v2", headers={"Accept": "*/*"})
    assert text.data == b"corrected summary\n"
    assert text.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert text.headers["Content-Disposition"] == 'attachment; filename="summary.txt"'
    assert text.headers["Content-Security-Policy"] == CSP and text.headers["X-Content-Type-Options"] == "nosniff"
    as_json = alice.fhir.get(f"Binary/{doc}-v2")
    assert body(as_json)["contentType"] == "text/plain"
    assert as_json.headers["Content-Security-Policy"] == CSP and as_json.headers["X-Content-Type-Options"] == "nosniff"
    # text that declared a safe charset other than UTF-8 keeps it, in the attachment and on the wire
    name = upload(alice, "lettre.txt", "Caf\u00e9\n".encode("latin-1"), "text/plain;charset=ISO-8859-1")
    alice.parse.put(f"/classes/MedicalDocument/{doc}", {"file": {"__type": "File", "name": name}})
    attachment = alice.fhir.read(f"DocumentReference/{doc}")["content"][0]["attachment"]  # validated R4
    assert attachment["contentType"] == "text/plain; charset=iso-8859-1"
    latin = alice.fhir.get(f"Binary/{doc}-v3", headers={"Accept": "*/*"})
    assert latin.headers["Content-Type"] == "text/plain; charset=iso-8859-1" and latin.data == b"Caf\xe9\n"


def test_a_binary_stored_as_html_before_the_allow_list_is_only_downloaded(alice, db_session):
    doc = make_document(alice)
    page = b"<html><script>alert(document.cookie)</script></html>"
    name = db_session.scalar(select(MedicalDocument.file_name).where(MedicalDocument.object_id == doc))
    # What an earlier version let through: the document's file is really a page, recorded as text/html.
    db_session.execute(update(StoredFile).where(StoredFile.name == name).values(content_type="text/html"))
    db_session.execute(update(FileBlob).where(FileBlob.name == name).values(data=page))
    db_session.commit()
    raw = alice.fhir.get(f"Binary/{doc}-v1", headers={"Accept": "text/html"})
    assert raw.status_code == 200 and raw.data == page
    assert raw.headers["Content-Type"] == "application/octet-stream"
    assert raw.headers["Content-Disposition"] == 'attachment; filename="discharge.pdf"'
    assert raw.headers["Content-Security-Policy"] == CSP and raw.headers["X-Content-Type-Options"] == "nosniff"
    assert body(alice.fhir.get(f"Binary/{doc}-v1"))["contentType"] == "text/html"  # the record says what it was


def test_no_fhir_write_stores_file_bytes(alice, db_session):
    """The one way in for file bytes is /parse/files (and the importer), both through FileService.upload and
    its allow-list. A Binary written through FHIR (create, update, a transaction entry) is not served; if
    that changes, it must go through the same checks, and this test says so."""
    page = base64.b64encode(b"<html><script>alert(document.cookie)</script></html>").decode()
    binary = {"resourceType": "Binary", "contentType": "text/html", "data": page}
    files_before = db_session.scalar(select(func.count()).select_from(StoredFile))
    outcome(alice.fhir.post("Binary", binary), 404)
    outcome(alice.fhir.put("Binary/abc", {**binary, "id": "abc"}), 404)
    outcome(alice.fhir.post("", {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": binary, "request": {"method": "POST", "url": "Binary"}}]}), 404)
    assert db_session.scalar(select(func.count()).select_from(StoredFile)) == files_before


def test_a_refused_file_type_is_a_415_operation_outcome():
    # No FHIR interaction writes file bytes (Binary create/update are not served; a DocumentReference names a
    # file uploaded through /parse/files), so the refusal is checked where the FHIR face would answer it.
    error = UnsupportedMediaType("File upload of type text/html is disabled.")
    outcome_, status = from_error(error)
    assert status == 415 and outcome_["issue"][0]["code"] == "not-supported"
    assert error.parse_code == 130
