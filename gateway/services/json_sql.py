"""JSON array containment in SQL, the same meaning on PostgreSQL (jsonb @>) and SQLite (json_each)."""
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
