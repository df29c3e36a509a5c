"""HumanName helpers shared by Patient, RelatedPerson and Practitioner (hl7.org/fhir/R4/datatypes.html#HumanName)."""

from __future__ import annotations

import re
from typing import Any

# "When clear": exactly two words of Latin letters (with hyphens/apostrophes), given name first. Other
# shapes (one word, three words, CJK names that put the family name first, commas) keep only `text`,
# because splitting them would be a guess about which part is the family name.
_LATIN_WORD = r"[A-Za-z\u00C0-\u024F][A-Za-z\u00C0-\u024F'\u2019.-]*"
_CLEAR = re.compile(rf"^({_LATIN_WORD}) ({_LATIN_WORD})$")


def human_name(full_name: str | None) -> dict[str, Any] | None:
    if not full_name:
        return None
    name: dict[str, Any] = {"text": full_name}
    m = _CLEAR.match(full_name)
    if m:
        name["family"] = m[2]
        name["given"] = [m[1]]
    return name


def full_name(name: dict[str, Any] | None) -> str | None:
    """The display form of a HumanName: its text, else given names then family."""
    if not name:
        return None
    if name.get("text"):
        return name["text"]
    parts = list(name.get("prefix", [])) + list(name.get("given", []))
    if name.get("family"):
        parts.append(name["family"])
    parts += list(name.get("suffix", []))
    return " ".join(parts) or None


def pick_name(names: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The name to show: the first "official" or "usual" one, else the first that is not "old"."""
    names = names or []
    for use in ("official", "usual"):
        for name in names:
            if name.get("use") == use:
                return name
    return next((n for n in names if n.get("use") != "old"), names[0] if names else None)
