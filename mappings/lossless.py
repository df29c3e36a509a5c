"""Lossless round trips: the `_fhir` rule.

from_fhir(resource) maps what it can into native columns. If rebuilding the resource from those columns
alone would not give the resource back (extra codings, identifiers, extensions, narrative, partial-date
precision, elements we do not map...), the record also gets `_fhir`: the resource as received, minus its
server-managed parts (id, meta.versionId, meta.lastUpdated). The store keeps `_fhir` in a JSON column; the
native API never shows it.

to_fhir(record) always builds every element from the columns first ("fresh"). When the record has
`_fhir`, each top-level element (a choice type such as onset[x] is one element, `_x` primitive extensions go
with `x`) is then decided by comparing the columns it is built from (the module's ELEMENTS table):

* the columns still equal what from_fhir derives from `_fhir` -> the element is served as received;
* a column changed (edited through the native API) -> the freshly built element replaces it;
* an element no column feeds (not in ELEMENTS) -> served as received.

`extension` is decided per extension URL the same way (ELEMENTS keys "extension:<name>"), so foreign
extensions survive edits of ours. Consequently a valid resource reads back unchanged after
from_fhir -> to_fhir, and native edits show up in FHIR while untouched unmapped data stays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .context import MappingContext
from .native import comparable, fhir_instant

Build = Callable[..., dict[str, Any]]
Columns = Callable[[dict[str, Any], MappingContext], dict[str, Any]]

SERVER_META = ("versionId", "lastUpdated")
# Native fields that become id/meta (or nothing), so from_fhir never returns them.
SERVER_FIELDS = ("createdAt", "updatedAt", "ACL", "version")


def json_copy(value: Any) -> Any:
    """A copy of JSON data (dicts and lists copied, strings, numbers, booleans and None shared): what
    copy.deepcopy gives for it, 3x faster (it runs for every resource a Bundle writes)."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_copy(v) for v in value]
    return value


def content(resource: dict[str, Any], *, copy: bool = True) -> dict[str, Any]:
    """The resource minus server-managed parts (id and meta.versionId/lastUpdated); `copy=False` shares its
    elements with `resource` (to compare it, not to keep it)."""
    result = {k: v for k, v in resource.items() if k != "id"}
    if copy:
        result = json_copy(result)
    meta = {k: v for k, v in result.get("meta", {}).items() if k not in SERVER_META}
    if meta:
        result["meta"] = meta
    else:
        result.pop("meta", None)
    return result


def envelope(
    resource_type: str, record: dict[str, Any], body: dict[str, Any], *, version_in_meta: bool = True
) -> dict[str, Any]:
    """resourceType, id and meta (client meta from `_fhir` plus versionId/lastUpdated) around a body."""
    resource: dict[str, Any] = {"resourceType": resource_type}
    if record.get("objectId"):
        resource["id"] = record["objectId"]
    meta = dict((record.get("_fhir") or {}).get("meta", {}))
    if version_in_meta and record.get("version") is not None:
        meta["versionId"] = str(record["version"])
    if record.get("updatedAt"):
        meta["lastUpdated"] = fhir_instant(record["updatedAt"])
    if meta:
        resource["meta"] = meta
    resource.update({k: v for k, v in body.items() if k not in ("resourceType", "id", "meta")})
    return resource


def _group_of(key: str, choices: tuple[str, ...]) -> str:
    name = key.removeprefix("_")
    for prefix in choices:
        rest = name[len(prefix) :]
        if name.startswith(prefix) and rest[:1].isupper():
            return prefix + "[x]"
    return name


def merge(
    fresh: dict[str, Any],
    original: dict[str, Any],
    current: dict[str, Any],
    derived: dict[str, Any],
    elements: dict[str, tuple[str, ...]],
    ctx: MappingContext,
) -> dict[str, Any]:
    """Element by element: the original where its columns are unchanged, else the fresh element."""
    choices = tuple(k[:-3] for k in elements if k.endswith("[x]"))

    def changed(columns: tuple[str, ...]) -> bool:
        return any(comparable(current.get(c)) != comparable(derived.get(c)) for c in columns)

    def by_group(resource: dict[str, Any]) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for key in resource:
            if key not in ("resourceType", "id", "meta"):
                groups.setdefault(_group_of(key, choices), []).append(key)
        return groups

    original_groups, fresh_groups = by_group(original), by_group(fresh)
    result: dict[str, Any] = {}
    for group in list(original_groups) + [g for g in fresh_groups if g not in original_groups]:
        if group == "extension":
            merged = _merge_extensions(
                fresh.get("extension", []), original.get("extension", []), elements, changed, ctx
            )
            if merged:
                result["extension"] = merged
            if "_extension" in original:  # pragma: no cover - not valid FHIR JSON, kept verbatim
                result["_extension"] = original["_extension"]
            continue
        columns = elements.get(group)
        source, keys = (original, original_groups.get(group, []))
        if columns is not None and changed(columns):
            source, keys = (fresh, fresh_groups.get(group, []))
        for key in keys:
            result[key] = json_copy(source[key])
    return result


def _merge_extensions(
    fresh: list[dict[str, Any]],
    original: list[dict[str, Any]],
    elements: dict[str, tuple[str, ...]],
    changed: Callable[[tuple[str, ...]], bool],
    ctx: MappingContext,
) -> list[dict[str, Any]]:
    ours = {
        ctx.extension_url(k.split(":", 1)[1]): cols
        for k, cols in elements.items()
        if k.startswith("extension:")
    }
    fresh_by_url: dict[str, list[dict[str, Any]]] = {}
    for ext in fresh:
        fresh_by_url.setdefault(ext.get("url", ""), []).append(ext)
    result: list[dict[str, Any]] = []
    placed: set[str] = set()
    for ext in original:
        url = ext.get("url", "")
        if url in ours and changed(ours[url]):
            if url not in placed:
                result.extend(json_copy(fresh_by_url.get(url, [])))
                placed.add(url)
        else:
            result.append(json_copy(ext))
    present = {ext.get("url") for ext in original}
    for url, columns in ours.items():
        if url not in placed and url not in present and changed(columns):
            result.extend(json_copy(fresh_by_url.get(url, [])))
    return result


def to_fhir(
    resource_type: str,
    record: dict[str, Any],
    build: Build,
    columns: Columns,
    elements: dict[str, tuple[str, ...]],
    ctx: MappingContext,
    *,
    version_in_meta: bool = True,
    current_extra: dict[str, Any] | None = None,
    derived_extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    **build_kwargs: Any,
) -> dict[str, Any]:
    """Build from the columns, then apply the `_fhir` rule (module docstring)."""
    body = build(record, ctx, **build_kwargs)
    original = record.get("_fhir")
    if original:
        derived = columns(original, ctx)
        current = dict(record)
        if current_extra:
            current.update(current_extra)
        if derived_extra:
            derived.update(derived_extra(original))
        body = merge(body, original, current, derived, elements, ctx)
    return envelope(resource_type, record, body, version_in_meta=version_in_meta)


def from_fhir(
    resource: dict[str, Any], build: Build, columns: Columns, ctx: MappingContext
) -> dict[str, Any]:
    """Columns from the resource; `_fhir` when the columns alone would not rebuild it."""
    record = columns(resource, ctx)
    if resource.get("id"):
        record = {"objectId": resource["id"], **record}
    received = content(resource, copy=False)
    rebuilt = content({"resourceType": resource.get("resourceType"), **build(record, ctx)}, copy=False)
    if rebuilt != received:
        record["_fhir"] = json_copy(received)  # kept: a copy (most resources rebuild and need none)
    return record
