"""Reading import files into entries: FHIR Bundles (collection, transaction, batch, searchset, document), a
single resource, or NDJSON of resources. A file that is none of these is an ImportFileError before anything
is written."""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gateway.errors import InvalidInput

BUNDLE_TYPES = ("collection", "transaction", "batch", "searchset", "document")
NDJSON_SUFFIXES = (".ndjson", ".jsonl")
#: Import order, so that references point backwards: the directory, patients, documents (derivedFrom,
#: proof of vaccination), then the rest.
PHASES = {"Practitioner": 0, "Organization": 0, "Patient": 1, "DocumentReference": 2}
LAST_PHASE = 3


class ImportFileError(InvalidInput):
    """A file that cannot be imported at all (not JSON, not a Bundle or NDJSON of resources)."""


@dataclass
class Entry:
    resource: dict[str, Any] | None
    full_url: str | None = None
    method: str | None = None
    url: str | None = None

    @property
    def resource_type(self) -> str:
        if self.resource is not None:
            return str(self.resource.get("resourceType"))
        return (self.url or "").split("?")[0].split("/")[0] or "(no resource)"


@dataclass
class Source:
    name: str
    entries: list[Entry]

    @property
    def phase(self) -> int:
        """The earliest import phase among its resources (files are imported in that order)."""
        return min((PHASES.get(e.resource_type, LAST_PHASE) for e in self.entries), default=LAST_PHASE)


def read_source(path: str | Path) -> Source:
    """A file as a Source; ImportFileError when it cannot be read or is not importable."""
    path = Path(path)
    name = path.name.removesuffix(".gz")
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as e:
        raise ImportFileError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ImportFileError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return parse_source(str(path), text, ndjson=name.endswith(NDJSON_SUFFIXES) or None)


def parse_source(name: str, text: str, *, ndjson: bool | None = None) -> Source:
    """A Bundle, a single resource, or NDJSON (one resource per line; guessed when `ndjson` is None)."""
    if not text.strip():
        raise ImportFileError(f"{name}: the file is empty")
    if ndjson:
        return Source(name, _ndjson_entries(name, text))
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        lines = [line for line in text.splitlines() if line.strip()]
        if ndjson is None and len(lines) > 1 and _is_object(lines[0]):
            return Source(name, _ndjson_entries(name, text))
        raise ImportFileError(f"{name}: not valid JSON ({e})") from None
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise ImportFileError(f"{name}: not a FHIR resource or Bundle (no resourceType)")
    if document["resourceType"] != "Bundle":
        return Source(name, [Entry(document)])
    return Source(name, _bundle_entries(name, document))


def _is_object(line: str) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def _ndjson_entries(name: str, text: str) -> list[Entry]:
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            resource = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise ImportFileError(f"{name}: line {number} is not valid JSON ({e})") from None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise ImportFileError(f"{name}: line {number} is not a FHIR resource (no resourceType)")
        entries.append(Entry(resource))
    if not entries:
        raise ImportFileError(f"{name}: no resources")
    return entries


def _bundle_entries(name: str, bundle: dict[str, Any]) -> list[Entry]:
    kind = bundle.get("type")
    if kind not in BUNDLE_TYPES:
        raise ImportFileError(f"{name}: a Bundle of type {kind!r} is not importable "
                              f"(accepted: {', '.join(BUNDLE_TYPES)})")
    raw = bundle.get("entry", [])
    if not isinstance(raw, list):
        raise ImportFileError(f"{name}: Bundle.entry is not a list")
    entries = []
    for number, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ImportFileError(f"{name}: Bundle.entry[{number}] is not an object")
        resource = item.get("resource")
        if resource is not None and (not isinstance(resource, dict)
                                     or not isinstance(resource.get("resourceType"), str)):
            raise ImportFileError(f"{name}: Bundle.entry[{number}].resource has no resourceType")
        request = item.get("request") if isinstance(item.get("request"), dict) else {}
        entries.append(Entry(resource, item.get("fullUrl"), request.get("method"), request.get("url")))
    return entries
