"""Importing FHIR Bundles and NDJSON into the PHR (`phr-gateway import`, DESIGN.md "Interfaces").

Every resource goes the one write path (ObjectService: validation, access policy, versions, audit, FHIR
view), acting as the owner, so an import is exactly what the owner could have typed in. How:

* Files are read whole first (`read_source`): a file that is not a FHIR Bundle (collection, transaction,
  batch, searchset, document) or NDJSON of resources is an ImportFileError before anything is written.
* Each Patient becomes a Profile of the owner; its `contact`s become EmergencyContacts. A Patient whose
  identifier (system|value) is already on one of the owner's Profiles is not imported again: it and every
  record pointing to it are skipped ("already imported"), so importing a file twice makes no duplicates.
  (A Patient without identifiers cannot be recognised and is imported again.)
* Practitioner / Organization become directory Providers. The directory is not a patient's to write, so
  they are created with the operator's (master) authority, as `users create` does; a Provider with the
  same identifier and kind is reused instead.
* AllergyIntolerance, Immunization, MedicationStatement, Observation (laboratory; a blood group sets
  Profile.bloodType), DocumentReference (inline attachment `data` becomes an uploaded file) and
  RelatedPerson land in their classes. Everything else, and every resource that is not valid R4
  (gateway.fhir.validation) or that the store refuses, is skipped with the reason.
* References between imported resources (`urn:uuid:` fullUrls, `Type/id`, absolute fullUrls) are
  rewritten to the new ids; a reference to something not imported is dropped (its `display` and
  `identifier` stay), so no record points into the source system's id space.
* Each resource is written in a savepoint: a refused one leaves nothing behind (no orphan file). The
  caller commits once per file (the CLI: one transaction per file).
"""
from gateway.services.importer.importer import Importer, owner_by_username
from gateway.services.importer.report import ImportReport
from gateway.services.importer.sources import ImportFileError, Source, parse_source, read_source

__all__ = [
    "ImportFileError",
    "ImportReport",
    "Importer",
    "Source",
    "owner_by_username",
    "parse_source",
    "read_source",
]
