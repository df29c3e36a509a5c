"""Conformance inputs: our extension StructureDefinitions (rendered for a server base) and R4 checks.

The StructureDefinitions in structuredefinitions/*.json are written with the placeholder {{BASE_URL}};
`structure_definitions(base_url)` renders them with the server's FHIR base, so their canonical URLs are
`{base_url}/StructureDefinition/<name>`, the URLs mappings/ puts in resources (mappings.extensions).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

PLACEHOLDER = "{{BASE_URL}}"


def _templates() -> dict[str, str]:
    folder = resources.files("conformance.structuredefinitions")
    return {
        entry.name[:-5]: entry.read_text(encoding="utf-8")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    }


_TEMPLATES = _templates()


def structure_definitions(base_url: str) -> list[dict[str, Any]]:
    """Our extension StructureDefinitions with canonical URLs under `base_url` (the FHIR base)."""
    base = base_url.rstrip("/")
    return [json.loads(text.replace(PLACEHOLDER, base)) for text in _TEMPLATES.values()]


def structure_definition(name: str, base_url: str) -> dict[str, Any]:
    return json.loads(_TEMPLATES[name].replace(PLACEHOLDER, base_url.rstrip("/")))
