"""What every face refuses before a value goes further, the same on SQLite and PostgreSQL: JSON nested
deeper than MAX_JSON_DEPTH, and the NUL character in text that would reach the database (PostgreSQL's
text and jsonb cannot hold U+0000 and refuse it with an error; SQLite would store it, so both refuse it here
and answer alike). The faces turn the InvalidInput into their own error format."""
from __future__ import annotations

from typing import Any, Iterable

from gateway.errors import InvalidInput

#: Deepest nesting of JSON objects and arrays accepted in a body, a `where`, GraphQL variables or a LiveQuery
#: message. FHIR resources nest about 10 levels (a Questionnaire's items a few more), Parse objects fewer;
#: orjson refuses more than 1,024 levels when parsing and 254 when writing, and Python's recursion limit
#: (1,000) is below what it parses, so anything deeper cannot be handled by every part and is refused at once.
MAX_JSON_DEPTH = 100


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when objects and arrays nest more than `limit` levels in `value` (without recursion: the value
    may be 1,000 levels deep)."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return False
    pending: list[tuple[Iterable[Any], int]] = [(value.values() if kind is dict else value, 1)]
    while pending:
        items, depth = pending.pop()
        for item in items:
            kind = type(item)
            if kind is dict or kind is list:
                if depth >= limit:
                    return True
                pending.append((item.values() if kind is dict else item, depth + 1))
    return False


def check_depth(value: Any, what: str = "The JSON") -> Any:
    """`value`, or InvalidInput when it nests deeper than MAX_JSON_DEPTH."""
    if too_deep(value):
        raise InvalidInput(f"{what} nests objects and arrays more than {MAX_JSON_DEPTH} levels deep")
    return value


def refuse_nul(texts: Iterable[str], what: str) -> None:
    """InvalidInput when one of `texts` holds U+0000 (ids, search values, paths: see the module's doc)."""
    for text in texts:
        if "\x00" in text:
            raise InvalidInput(f"{what} must not contain the NUL character")
