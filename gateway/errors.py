"""Domain errors. Services raise these; each face turns them into its own format in one place
(native: Parse `{code, error}`; FHIR: OperationOutcome). `parse_code` keeps Parse's exact code."""
from __future__ import annotations


class DomainError(Exception):
    parse_code = 1
    fhir_status = 500
    fhir_code = "exception"

    def __init__(self, message: str, *, parse_code: int | None = None):
        super().__init__(message)
        self.message = message
        if parse_code is not None:
            self.parse_code = parse_code


class NotFound(DomainError):
    """Missing, deleted, or not visible to the caller: the three look the same from outside."""

    parse_code = 101
    fhir_status = 404
    fhir_code = "not-found"


class Gone(NotFound):
    """Deleted (FHIR 410); the native face answers 101 like any missing object."""

    fhir_status = 410
    fhir_code = "deleted"


class InvalidInput(DomainError):
    parse_code = 107
    fhir_status = 400
    fhir_code = "invalid"


class InvalidType(InvalidInput):
    parse_code = 111


class ValidationFailed(InvalidInput):
    parse_code = 142


class InvalidQuery(InvalidInput):
    parse_code = 102


class Forbidden(DomainError):
    parse_code = 119
    fhir_status = 403
    fhir_code = "forbidden"


class Conflict(DomainError):
    parse_code = 137
    fhir_status = 409
    fhir_code = "conflict"


class PreconditionFailed(Conflict):
    fhir_status = 412


class Unauthenticated(DomainError):
    parse_code = 209
    fhir_status = 401
    fhir_code = "login"


class TooLarge(InvalidInput):
    parse_code = 130
    fhir_status = 413
    fhir_code = "too-costly"


class UnsupportedMediaType(InvalidInput):
    """Content of a type the server does not take (a file type off the allow-list, HTML under any name):
    Parse FILE_SAVE_ERROR, FHIR 415 Unsupported Media Type (RFC 9110 §15.5.16)."""

    parse_code = 130
    fhir_status = 415
    fhir_code = "not-supported"


class NotAllowed(Forbidden):
    """An interaction this resource never allows (AuditEvent is append-only): FHIR 405."""

    fhir_status = 405
    fhir_code = "not-supported"


class Unprocessable(InvalidInput):
    """Well-formed but not acceptable (FHIR 422: a resource that fails validation or our rules)."""

    parse_code = 142
    fhir_status = 422
    fhir_code = "processing"

    def __init__(self, message: str, issues: list | None = None):
        super().__init__(message)
        self.issues = issues


class Malformed(InvalidInput):
    """Not FHIR JSON (R4 json.html's rules: a null, an empty object or array, a primitive of another JSON
    type): FHIR 400 with an issue naming each element, as R4 http.html asks for content that cannot be
    parsed; what parses but fails the resource's rules is Unprocessable (422)."""

    def __init__(self, message: str, issues: list | None = None):
        super().__init__(message)
        self.issues = issues
