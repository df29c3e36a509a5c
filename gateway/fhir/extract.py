"""What a resource is searchable by: the values of each search parameter, ready for the fhir_index table.
Pure: no database, no Flask. Follows R4's search value rules (hl7.org/fhir/R4/search.html): token on
Coding/CodeableConcept/Identifier/ContactPoint/code, string on HumanName/Address parts, date as a range
at its precision, reference as type/id."""
from __future__ import annotations

import calendar
import re
import unicodedata
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator

from gateway.fhir.params import Path_, SearchParam, params_for, storage

MIN_DATE = datetime(1, 1, 1, tzinfo=timezone.utc)
MAX_DATE = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
#: The last instant a datetime holds (a range's end at day precision on 9999-12-31).
END_OF_TIME = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
_META_PARAMS = {"_tag": ("meta", "tag"), "_security": ("meta", "security"), "_profile": ("meta", "profile"),
                "_source": ("meta", "source")}
_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def normalize(text: str) -> str:
    """Case- and accent-insensitive form for string search (R4: 'ignoring case and accents')."""
    if text.isascii():  # NFKD leaves ASCII as it is, and it has no combining marks (most codes and names)
        return text.lower().strip()[:500]
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()[:500]


def date_range(text: str) -> tuple[datetime, datetime] | None:
    """The instant range a FHIR date, dateTime or instant covers, at its own precision."""
    if not isinstance(text, str):
        return None
    m = _PARTIAL.match(text)
    if m:
        try:
            return _partial_range(int(m.group(1)), m.group(2), m.group(3))
        except ValueError:  # 2024-13-40: well-formed digits, no such date
            return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = _utc(value)
    # A dateTime to the second covers that whole second.
    has_fraction = "." in text.split("T", 1)[-1]
    return value, value if has_fraction else shifted(value, timedelta(seconds=1) - timedelta(microseconds=1))


def _utc(value: datetime) -> datetime:
    """The instant in UTC; one beyond the years 1-9999 there (9999-12-31T23:00:00-05:00) is the end (or the
    start) of the time a datetime holds: searches and index rows compare such values with the ends of
    time, and the resource itself keeps the text it was written with."""
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        return END_OF_TIME if value.utcoffset() < timedelta(0) else MIN_DATE


def shifted(value: datetime, delta: timedelta) -> datetime:
    """value + delta, held within MIN_DATE..the last microsecond of year 9999 (an `ap` search's slack around
    0001-01-01 or 9999-12-31 would overflow)."""
    try:
        return value + delta
    except OverflowError:
        return MIN_DATE if delta < timedelta(0) else END_OF_TIME


def _partial_range(year: int, month: str | None, day: str | None) -> tuple[datetime, datetime]:
    """A year, year-month or date as the instants it covers (ValueError when there is no such date)."""
    if day:
        low = datetime(year, int(month), int(day), tzinfo=timezone.utc)
        return low, datetime(year, int(month), int(day), 23, 59, 59, 999999, tzinfo=timezone.utc)
    if month:
        last = calendar.monthrange(year, int(month))[1]
        low = datetime(year, int(month), 1, tzinfo=timezone.utc)
        return low, datetime(year, int(month), last, 23, 59, 59, 999999, tzinfo=timezone.utc)
    return datetime(year, 1, 1, tzinfo=timezone.utc), datetime(year, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)


def _children(nodes: list[Any], name: str, of_type: str | None, out: list[Any]) -> None:
    """Append to `out` the `name` children of each node (lists flattened). `of_type` keeps the choice
    element of that type, which FHIR JSON names by its type (value as Quantity: valueQuantity). Loops, not
    generators: this runs for every resource written."""
    if of_type is not None:
        name, of_type = _typed_name(name, of_type), None
    for node in nodes:
        if isinstance(node, list):
            _children(node, name, None, out)
            continue
        if not isinstance(node, dict):
            continue
        if name in node:
            _add(out, node[name])
            continue
        # A choice element (value[x], effective[x], onset[x]...): every type it comes as.
        n = len(name)
        for key, value in node.items():
            if key.startswith(name) and len(key) > n and key[n].isupper():
                _add(out, value)


def _add(out: list[Any], value: Any) -> None:
    """An element's items: a repeating element's each, else the element."""
    if isinstance(value, list):
        out.extend(value)
    else:
        out.append(value)


def values(resource: dict[str, Any], path: Path_,
           present: dict[str, tuple[str, ...]] | None = None) -> list[Any]:
    """The items `path` selects in the resource. `present`: element_names(resource), the keys each
    top-level name stands for (its own, or a choice element's: effective -> effectiveDateTime)."""
    elements, of_type = path.elements, path.of_type
    if not elements:  # the resource itself
        return [resource] if path.where is None or resource.get(path.where[0]) == path.where[1] else []
    typed_at = path.typed_element
    first = elements[0]
    if typed_at == 0 and of_type is not None:
        first = _typed_name(first, of_type)
        keys: tuple[str, ...] = (first,) if first in resource else ()
    else:
        keys = (present if present is not None else element_names(resource)).get(first, ())
    nodes: list[Any] = []
    for key in keys:
        _add(nodes, resource[key])
    for i in range(1, len(elements)):
        if not nodes:
            return nodes
        found: list[Any] = []
        _children(nodes, elements[i], of_type if i == typed_at else None, found)
        nodes = found
    if path.where and nodes:
        key, expected = path.where
        nodes = [n for n in nodes if isinstance(n, dict) and n.get(key) == expected]
    return nodes


@lru_cache(maxsize=1024)
def _typed_name(name: str, of_type: str) -> str:
    return name + of_type[:1].upper() + of_type[1:]


def _token_rows(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, bool):
        yield {"value": "true" if value else "false"}
    elif isinstance(value, str):
        yield {"value": value}
    elif isinstance(value, dict):
        if "coding" in value or "text" in value and not ("value" in value or "code" in value):
            rows = [row for coding in value.get("coding", []) for row in _token_rows(coding)]
            yield from rows
            if value.get("text"):
                text = normalize(value["text"])
                # `:text` matches the start of a display or text: a text that begins one of the codings'
                # displays ("Glucose" before "Glucose [Mass/volume] in Blood") matches nothing of its own.
                if not any((row.get("norm") or "").startswith(text) for row in rows):
                    yield {"norm": text}
        elif "code" in value or "display" in value:
            yield {"system": value.get("system"), "value": value.get("code"),
                   "norm": normalize(value["display"]) if value.get("display") else None}
        elif "value" in value:  # Identifier, ContactPoint
            yield {"system": value.get("system"), "value": str(value["value"]),
                   "norm": normalize(value["type"]["text"]) if isinstance(value.get("type"), dict)
                   and value["type"].get("text") else None}


def _string_rows(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, str):
        yield {"value": value[:500], "norm": normalize(value)}
    elif isinstance(value, dict):
        parts: list[str] = []
        for key in ("text", "family", "city", "district", "state", "postalCode", "country"):
            if isinstance(value.get(key), str):
                parts.append(value[key])
        for key in ("given", "prefix", "suffix", "line"):
            parts.extend(v for v in value.get(key, []) if isinstance(v, str))
        for part in parts:
            yield {"value": part[:500], "norm": normalize(part)}


def _date_rows(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, str):
        rng = date_range(value)
        if rng:
            yield {"low": rng[0], "high": rng[1]}
    elif isinstance(value, dict) and ("start" in value or "end" in value):
        start = date_range(value["start"]) if value.get("start") else None
        end = date_range(value["end"]) if value.get("end") else None
        yield {"low": start[0] if start else MIN_DATE, "high": end[1] if end else MAX_DATE}


#: Marks an index row that holds a Reference.identifier (for the `:identifier` modifier).
IDENTIFIER_MARK = "#identifier"


def _reference_rows(value: Any, base_url: str, target_is: str | None) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict) and isinstance(value.get("identifier"), dict) and not target_is:
        ident = value["identifier"]
        if isinstance(ident.get("value"), str):
            yield {"system": ident.get("system"), "value": ident["value"][:500], "norm": IDENTIFIER_MARK}
    ref = value.get("reference") if isinstance(value, dict) else value if isinstance(value, str) else None
    if not isinstance(ref, str):
        return
    literal = ref
    if base_url and ref.startswith(base_url.rstrip("/") + "/"):
        ref = ref[len(base_url.rstrip("/")) + 1:]
    parts = ref.split("/")
    if len(parts) >= 2 and parts[-2][:1].isupper() and "://" not in ref:
        target_type, target_id = parts[-2], parts[-1]
        if len(parts) >= 4 and parts[-2] == "_history":
            target_type, target_id = parts[-4], parts[-3]
        if target_is and target_type != target_is:
            return
        yield {"target_type": target_type, "target_id": target_id, "value": literal[:500]}
    else:
        yield {"value": literal[:500]}


def _quantity_rows(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict) and isinstance(value.get("value"), (int, float)):
        yield {"number": float(value["value"]), "system": value.get("system"),
               "value": value.get("code") or value.get("unit")}
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield {"number": float(value)}


def element_names(node: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Every element name `_children` can match in `node`, with the keys it stands for: each key for itself
    and, for choice elements, the prefixes before its upper-case letters (valueQuantity answers to value,
    effectiveDateTime to effective too). A name that is a key stands for that key only."""
    names = {key: (key,) for key in node}
    for key in node:
        if not key.islower():
            for prefix in _choice_prefixes(key):
                if prefix not in node:
                    names[prefix] = names.get(prefix, ()) + (key,)
    return names


@lru_cache(maxsize=4096)
def _choice_prefixes(key: str) -> tuple[str, ...]:
    return tuple(key[:i] for i, c in enumerate(key) if i and c.isupper())


#: How a value of each parameter type becomes index rows: (value, base url, path) -> rows.
_ROWS_OF: dict[str, Callable[[Any, str, Path_], Iterable[dict[str, Any]]]] = {
    "token": lambda value, base_url, path: _token_rows(value),
    "string": lambda value, base_url, path: _string_rows(value),
    "date": lambda value, base_url, path: _date_rows(value),
    "reference": lambda value, base_url, path: _reference_rows(value, base_url, path.target_is),
    "quantity": lambda value, base_url, path: _quantity_rows(value),
    "number": lambda value, base_url, path: _quantity_rows(value),
    "uri": lambda value, base_url, path: [{"value": value[:500]}] if isinstance(value, str) else (),
}
_NO_ROWS = lambda value, base_url, path: ()  # noqa: E731 (a parameter type without index rows)


def _paths(param: SearchParam) -> tuple[Path_, ...]:
    return (Path_(_META_PARAMS[param.code]),) if param.code in _META_PARAMS else param.paths


def rows_for_param(resource: dict[str, Any], param: SearchParam, base_url: str,
                   present: dict[str, tuple[str, ...]] | None = None) -> list[dict[str, Any]]:
    """`present`: element_names(resource), to skip at once the paths whose first element is absent."""
    out: list[dict[str, Any]] = []
    rows_of = _ROWS_OF.get(param.type, _NO_ROWS)
    for path in _paths(param):
        if present is not None and path.elements and path.elements[0] not in present:
            continue
        for value in values(resource, path, present):
            out.extend(rows_of(value, base_url, path))
    return out


#: Every column of an index row but its key, empty: a row sets the one or two its parameter type fills.
_EMPTY_ROW = dict.fromkeys(("system", "value", "norm", "low", "high", "number", "target_type", "target_id"))


def index_rows(resource: dict[str, Any], base_url: str = "") -> list[dict[str, Any]]:
    """Every (param, value) row of one resource, all columns of fhir_index set (but its key); _id and
    _lastUpdated live on fhir_resource itself, and a parameter made of others (params.storage:
    `combo-code`, Observation's `patient`) is searched in theirs."""
    rt = resource["resourceType"]
    # A resource has the elements of a few of its type's ~30 parameters: a path whose first element is
    # absent is passed over at once (this runs for every resource written).
    present = element_names(resource)
    empty = {"resource_type": rt, "resource_id": resource["id"], **_EMPTY_ROW}
    rows = []
    for code, first, path, rows_of, whole in _index_plan(rt):
        if first is not None and first not in present:
            continue
        if whole and first in resource:  # the element itself (most paths): no walk
            items: list[Any] = []
            _add(items, resource[first])
        else:
            items = values(resource, path, present)
        for value in items:
            for row in rows_of(value, base_url, path):
                rows.append({**empty, "param": code, **row})
    return rows


@lru_cache(maxsize=None)
def _index_plan(resource_type: str) -> tuple[tuple[str, str | None, Path_, Callable[..., Any], bool], ...]:
    """(param, the name the path starts with, path, its rows, whether that element is all the path selects)
    for every path of the parameters that have index rows of their own. A path starting with a choice
    element of a given type starts with that type's name (value as Quantity: valueQuantity)."""
    plan = []
    for code, param in _stored_params(resource_type):
        for path in _paths(param):
            first, whole = None, False
            if path.elements:
                first = path.elements[0]
                if path.of_type is not None and path.typed_element == 0:
                    first = _typed_name(first, path.of_type)
                whole = len(path.elements) == 1 and path.where is None
            plan.append((code, first, path, _ROWS_OF.get(param.type, _NO_ROWS), whole))
    return tuple(plan)


def _stored_params(resource_type: str) -> tuple[tuple[str, SearchParam], ...]:
    """The parameters that have index rows of their own."""
    where = storage(resource_type)
    return tuple((code, param) for code, param in params_for(resource_type).items()
                 if code not in ("_id", "_lastUpdated") and where[code].params == (code,))
