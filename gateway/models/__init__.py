"""The PHR data model: one module per record type (DESIGN.md, 'The data model')."""
from gateway.db import Base
from gateway.models.allergy import Allergy
from gateway.models.audit_log import AuditLog
from gateway.models.base import ProfileRecord, Record
from gateway.models.bulk import ExportFile, ExportJob
from gateway.models.emergency_contact import EmergencyContact
from gateway.models.fhir import FhirHistory, FhirIndex, FhirResource
from gateway.models.lab_result import LabResult
from gateway.models.medical_document import MedicalDocument
from gateway.models.medication import Medication
from gateway.models.oauth import AuthorizationCode, OAuthClient, OAuthGrant, OAuthToken, SigningKey, UsedJti
from gateway.models.profile import Profile
from gateway.models.provider import Provider
from gateway.models.shared_access import SharedAccess
from gateway.models.subscription import FhirSubscription
from gateway.models.support import AclEntry, FileBlob, RecordVersion, StoredFile
from gateway.models.user import Session, User
from gateway.models.vaccination import Vaccination

#: Parse class name -> model, for every native class.
MODELS: dict[str, type[Record]] = {
    m.__parse_class__: m
    for m in (User, Session, Profile, MedicalDocument, Allergy, Vaccination, Medication, LabResult,
              Provider, SharedAccess, EmergencyContact, AuditLog)
}

__all__ = [
    "ExportFile", "ExportJob",
    "AuthorizationCode", "OAuthClient", "OAuthGrant", "OAuthToken", "SigningKey", "UsedJti",
    "AclEntry", "Allergy", "AuditLog", "Base", "EmergencyContact", "FhirHistory", "FhirIndex", "FhirResource", "FileBlob", "LabResult", "MODELS",
    "MedicalDocument", "Medication", "Profile", "ProfileRecord", "Provider", "Record", "RecordVersion",
    "FhirSubscription", "Session", "SharedAccess", "StoredFile", "User", "Vaccination",
]
