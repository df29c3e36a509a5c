"""Names of our extensions: the one place that spells them.

Each name has a StructureDefinition in conformance/structuredefinitions/<name>.json; the canonical URL is
`ctx.extension_url(name)`, i.e. `{base_url}/StructureDefinition/<name>`. R4 has no element for these
(checked against hl7.org/fhir/R4/<resource>.html), which is why they are extensions.
"""

PROFILE_NOTES = "profile-notes"  # Patient: free-text notes the owner keeps on the profile
NEXT_DOSE_DATE = "next-dose-date"  # Immunization: when the next dose is due (R4 has no such element)
PROOF_DOCUMENT = "proof-document"  # Immunization: the DocumentReference that proves the vaccination
DOCUMENT_VERSION = "document-version"  # DocumentReference: the PHR's file version counter (1, 2, ...)
DOCUMENT_SHARED = "document-shared"  # DocumentReference: the owner marked the document as shared
FILE_NAME = "file-name"  # Attachment: the stored file's name, so the native File survives a round trip
REVOKED_AT = "revoked-at"  # Consent: when the owner revoked the share (R4 Consent has no revocation date)
CONTACT_NOTES = "contact-notes"  # RelatedPerson: notes on an emergency contact

ALL = (
    PROFILE_NOTES,
    NEXT_DOSE_DATE,
    PROOF_DOCUMENT,
    DOCUMENT_VERSION,
    DOCUMENT_SHARED,
    FILE_NAME,
    REVOKED_AT,
    CONTACT_NOTES,
)
