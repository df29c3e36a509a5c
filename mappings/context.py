"""The mapping context: what a pure mapper needs to know about the server it maps for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

DEFAULT_BASE_URL = "http://127.0.0.1:8080/fhir"


@dataclass(frozen=True)
class MappingContext:
    """Server facts the mappers need; pass one per request or app, never global state.

    base_url: the FHIR base (`PHR_BASE_URL` + "/fhir"). Our extension canonicals, identifier systems and
        Binary URLs hang under it.
    now: the instant used for time-dependent states (an expired Consent is "inactive"). None means the
        current time; tests pass a fixed instant so the output is deterministic.
    """

    base_url: str = DEFAULT_BASE_URL
    now: datetime | None = None

    @property
    def base(self) -> str:
        return self.base_url.rstrip("/")

    def extension_url(self, name: str) -> str:
        """Canonical URL of one of our StructureDefinitions (conformance/structuredefinitions)."""
        return f"{self.base}/StructureDefinition/{name}"

    def identifier_system(self, name: str) -> str:
        """Identifier system for things that have no FHIR resource of their own (users, clients)."""
        return f"{self.base}/identifier/{name}"

    def current_time(self) -> datetime:
        return self.now if self.now is not None else datetime.now(UTC)


DEFAULT = MappingContext()
