"""The search-parameter registry: the official R4 definitions (conformance/search-parameters.r4.json) for the
resource types we serve, with each expression reduced to the paths that apply to one resource type.

Both the indexer (what to store at write time) and the CapabilityStatement (what we claim) read this one
registry, so what we claim is what we index and search.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "conformance" / "search-parameters.r4.json"

#: Resource types the FHIR face serves.
RESOURCE_TYPES = (
    "Patient", "AllergyIntolerance", "Immunization", "MedicationStatement", "Observation", "DocumentReference",
    "Consent", "AuditEvent", "RelatedPerson", "Practitioner", "Organization", "Group",
)
#: Types of parameters we index and search; composite and special ones are left out of what we claim.
SUPPORTED_TYPES = ("token", "string", "date", "reference", "quantity", "number", "uri")
#: Parameters whose definitions need what we do not store (full-text, _query, _profile by content...).
UNSUPPORTED = {"_text", "_content", "_query", "phonetic"}


@dataclass(frozen=True)
class Path_:
    """One path of an expression: dotted elements, an optional type filter (`as X`/`ofType(X)`) and,
    for references, an optional target type (`where(resolve() is X)`)."""

    elements: tuple[str, ...]
    of_type: str | None = None
    target_is: str | None = None
    #: `.where(system='phone')` on the last element: keep items whose `key` equals `value`.
    where: tuple[str, str] | None = None
    #: The element `of_type` applies to, when not the last (`(value.ofType(CodeableConcept)).text`: 0).
    typed_at: int | None = None

    @property
    def typed_element(self) -> int:
        """The index of the element `of_type` applies to."""
        return len(self.elements) - 1 if self.typed_at is None else self.typed_at


@dataclass(frozen=True)
class SearchParam:
    code: str
    type: str
    url: str
    description: str
    paths: tuple[Path_, ...]
    targets: tuple[str, ...] = ()


_OFTYPE = re.compile(r"^\((.*)\.ofType\((\w+)\)\)(\.\w+)*$")
_AS = re.compile(r"^\(?(.*?) as (\w+)\)?$")
_WHERE_RESOLVE = re.compile(r"^(.*)\.where\(resolve\(\) is (\w+)\)$")
_WHERE_EQ = re.compile(r"^(.*)\.where\((\w+) ?= ?'([^']*)'\)$")


def _parse_path(resource_type: str, part: str) -> Path_ | None:
    part = part.strip()
    of_type = target = None
    suffix: tuple[str, ...] = ()
    m = _OFTYPE.match(part)
    if m:
        part, of_type = m.group(1), m.group(2)
        if m.group(3):
            suffix = tuple(s for s in m.group(0).rsplit(")", 1)[1].split(".") if s)
    else:
        m = _AS.match(part)
        if m:
            part, of_type = m.group(1), m.group(2)
    m = _WHERE_RESOLVE.match(part)
    if m:
        part, target = m.group(1), m.group(2)
    where = None
    m = _WHERE_EQ.match(part)
    if m:
        part, where = m.group(1), (m.group(2), m.group(3))
    part = part.strip("()")
    if not re.fullmatch(r"[A-Za-z]+(\.[A-Za-z]+)*", part):
        return None  # an expression form we do not evaluate; the parameter is then not claimed
    elements = tuple(part.split("."))
    if elements[0] != resource_type:
        return None
    # `(value.ofType(CodeableConcept)).text`: the type is the last element's before the suffix
    typed_at = len(elements) - 2 if suffix and of_type is not None else None
    return Path_(elements[1:] + suffix, of_type, target, where, typed_at)


def _split_union(expression: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in expression:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "|" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


@cache
def registry() -> dict[str, dict[str, SearchParam]]:
    """resource type -> parameter code -> SearchParam (only what we can index and search)."""
    data = json.loads(SOURCE.read_text())
    out: dict[str, dict[str, SearchParam]] = {t: {} for t in RESOURCE_TYPES}
    for d in data["parameters"]:
        if d["type"] not in SUPPORTED_TYPES or d["code"] in UNSUPPORTED:
            continue
        for base in d["base"]:
            types = RESOURCE_TYPES if base in ("Resource", "DomainResource") else (base,)
            for rt in types:
                if rt not in out:
                    continue
                if d["code"].startswith("_"):
                    paths: tuple[Path_, ...] = ()
                else:
                    parsed = [_parse_path(rt, p) for p in _split_union(d.get("expression", ""))]
                    paths = tuple(p for p in parsed if p is not None)
                    if not paths:
                        continue
                out[rt][d["code"]] = SearchParam(
                    code=d["code"], type=d["type"], url=d["url"], description=d.get("description", ""),
                    paths=paths, targets=tuple(d.get("target", ())),
                )
    return out


def params_for(resource_type: str) -> dict[str, SearchParam]:
    return registry().get(resource_type, {})


# ---- where each parameter's values are stored ----

@dataclass(frozen=True)
class Storage:
    """Where a parameter's index rows are: those of `params`, and with `target_type` only the references to
    that type (and literal references with no type, which the parameter indexes as they are)."""

    params: tuple[str, ...]
    target_type: str | None = None


def _unrestricted(path: Path_) -> Path_:
    return Path_(path.elements, path.of_type, None, path.where, path.typed_at)


@cache
def storage(resource_type: str) -> dict[str, Storage]:
    """Parameter code -> where its values are stored, for every parameter of the type.

    Several R4 parameters index elements that others index already: Observation's `combo-code` is `code` and
    `component-code` together, `patient` is `subject` where it names a Patient, AuditEvent's `patient` is
    `agent` and `entity` where they name one. Such a parameter gets no rows of its own; its search reads the
    rows of the parameters it is made of (4 of an Observation's ~11 index rows). A parameter is derived when
    its paths, with their `resolve() is X` dropped, are exactly the union of other parameters' paths of the
    same type, those having no restriction of their own, and its paths all restrict to one type or none.
    """
    params = params_for(resource_type)
    out: dict[str, Storage] = {}
    # Fewest paths first, so a derived parameter is made of parameters already known to be stored.
    ordered = sorted(params.values(),
                     key=lambda p: (len(set(p.paths)), any(x.target_is for x in p.paths), p.code))
    for param in ordered:
        targets = {p.target_is for p in param.paths}
        paths = {_unrestricted(p) for p in param.paths}
        parts: list[str] = []
        covered: set[Path_] = set()
        if param.paths and len(targets) == 1:
            for other in ordered:
                if other.code == param.code or other.type != param.type or other.code not in out:
                    continue
                if out[other.code] != Storage((other.code,)) or any(p.target_is for p in other.paths):
                    continue  # only parameters stored as themselves, with no restriction
                own = set(other.paths)
                if own <= paths and not own <= covered:
                    parts.append(other.code)
                    covered |= own
        if parts and covered == paths:
            out[param.code] = Storage(tuple(sorted(parts)), next(iter(targets)))
        else:
            out[param.code] = Storage((param.code,))
    return out


def stored_as(resource_type: str, code: str) -> Storage:
    return storage(resource_type).get(code) or Storage((code,))
