"""JSON arrays in SQL, the same meaning on PostgreSQL (jsonb) and SQLite (json_each): containment, and the
items as rows."""
from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Boolean
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement


class json_array_contains(FunctionElement):
    """True when the JSON array in `column` contains the scalar `value`."""

    type = Boolean()
    inherit_cache = True
    name = "json_array_contains"

    def __init__(self, column: ColumnElement, value: Any):
        from sqlalchemy import literal

        self.value = value
        super().__init__(column, literal(orjson.dumps([value]).decode()), literal(value))


@compiles(json_array_contains, "postgresql")
def _pg(element, compiler, **kw):
    column, as_array, _ = list(element.clauses)
    return f"({compiler.process(column, **kw)} @> CAST({compiler.process(as_array, **kw)} AS JSONB))"


@compiles(json_array_contains)
def _default(element, compiler, **kw):
    column, _, value = list(element.clauses)
    return (
        f"EXISTS (SELECT 1 FROM json_each({compiler.process(column, **kw)}) "
        f"WHERE json_each.value = {compiler.process(value, **kw)})"
    )


class json_array_items(FunctionElement):
    """The items of a JSON array column as rows of text (a table-valued function, column `value`):
    jsonb_array_elements_text on PostgreSQL, json_each on SQLite. An item matches a category exactly when
    json_array_contains(column, category) holds: on PostgreSQL a non-array (which `@>` [category] never
    matches, and which jsonb_array_elements_text would reject with an error) gives no rows."""

    inherit_cache = True
    name = "json_array_items"


@compiles(json_array_items, "postgresql")
def _items_pg(element, compiler, **kw):
    column = compiler.process(list(element.clauses)[0], **kw)
    return f"jsonb_array_elements_text(CASE jsonb_typeof({column}) WHEN 'array' THEN {column} END)"


@compiles(json_array_items)
def _items_default(element, compiler, **kw):
    return f"json_each({compiler.process(list(element.clauses)[0], **kw)})"
