"""How the write buffer's rows reach the database (services/write_buffer.py): a new mapped object's row as
the ORM's flush would insert it, tables in foreign-key order, and on PostgreSQL COPY (or one multi-row
INSERT) on the driver's cursor with values bound as SQLAlchemy would bind them (a Bundle's ~1,500 index
rows: 1.6 ms of client CPU by COPY, 14 by executemany, and less server time). A table with other column
types, and every table on SQLite, goes by SQLAlchemy's executemany."""
from __future__ import annotations

from functools import cache
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Float, Integer, String, Table, inspect, insert, null
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import Null

from gateway.db import Base, UTCDateTime
from gateway.pg import ensure_transaction


def send(conn: Connection, rows: dict[Table, list[dict[str, Any]]]) -> None:
    """One statement per table (COPY, INSERT or executemany), in foreign-key order."""
    for table in sorted(rows, key=_rank().__getitem__):
        batch = rows[table]
        if conn.dialect.name == "postgresql" and _copyable(table):
            _send_plain(conn, table, batch)
        else:
            conn.execute(insert(table), batch)


@cache
def _rank() -> dict[Table, int]:
    """Each table's place in an order where a table comes after those its foreign keys point to."""
    return {table: i for i, table in enumerate(Base.metadata.sorted_tables)}


class _Computed:
    """A column default SQLAlchemy computes per row: a function of the execution context (ours ignore it)."""

    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn


@cache
def _insert_plan(cls: type) -> tuple[tuple[str, str, Any, Any], ...]:
    """(column key, attribute, value when the attribute is not set, value when it is None) for each column
    of the class's table, as the ORM's flush decides them: a column left out gets its default, else SQL
    NULL; None is SQL NULL (or the default) except in a JSON column, where it is JSON null."""
    mapper = inspect(cls)
    plan = []
    for column in mapper.local_table.columns:
        default = column.default
        if default is not None and not (default.is_scalar or default.is_callable):
            raise TypeError(f"{column}: a SQL default is not computed here")
        evaluates_none = column.type.should_evaluate_none
        if default is None:
            unset, none = (null() if evaluates_none else None), None
        else:
            value = _Computed(default.arg) if default.is_callable else default.arg
            unset, none = value, (None if evaluates_none else value)
        plan.append((column.key, mapper.get_property_by_column(column).key, unset, none))
    return tuple(plan)


_UNSET = object()


def columns_of(obj: Any) -> dict[str, Any]:
    """A new object's row, as the ORM's flush would insert it (`_insert_plan`)."""
    state = obj.__dict__
    row = {}
    for key, attr, unset, none in _insert_plan(type(obj)):
        value = state.get(attr, _UNSET)
        if value is _UNSET or value is None:
            value = unset if value is _UNSET else none
            if isinstance(value, _Computed):
                value = value.fn(None)
        row[key] = value
    return row


@cache
def _copyable(table: Table) -> bool:
    """Whether every column is a type COPY's text format takes as `_send_plain` writes it: psycopg's own
    text, numbers and booleans, times as UTCDateTime binds them, JSON as text (PostgreSQL parses it)."""
    types = (String, Integer, Float, Boolean, UTCDateTime, JSON)
    return all(isinstance(c.type, types) for c in table.columns)


def _json_text(value: Any) -> str | None:
    """A JSON column's value as SQLAlchemy's JSON type binds it: None is JSON null, `null()` SQL NULL."""
    if isinstance(value, Null):
        return None
    return orjson.dumps(value).decode()


#: Up to this many rows go out as one multi-row INSERT, more by COPY: COPY costs two round trips, which a
#: single write's one or two rows per table do not win back (a native create: 2.9 -> 2.0 ms of CPU, most
#: of it from the other changes of that commit); from ~16 rows on COPY is cheaper again.
COPY_FROM_ROWS = 4


def _send_plain(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """COPY ... FROM STDIN (or, for a few rows, one INSERT) in the connection's transaction, values bound as
    SQLAlchemy's INSERT would bind them."""
    dialect = conn.dialect
    keys = list(rows[0])
    columns = [table.c[k] for k in keys]
    # UTCDateTime (UTC, milliseconds) and JSON (text) change values on the way in; the others pass through.
    times = [i for i, c in enumerate(columns) if isinstance(c.type, UTCDateTime)]
    documents = [i for i, c in enumerate(columns) if isinstance(c.type, JSON)]
    quote = dialect.identifier_preparer
    target = f"{quote.format_table(table)} ({', '.join(quote.quote(c.name) for c in columns)})"
    binds = [(i, columns[i].type.process_bind_param) for i in times]
    if len(keys) == 1:
        values = [[row[keys[0]]] for row in rows]
    else:
        pick = itemgetter(*keys)  # the row's values in column order (a tuple, made in C)
        values = [pick(row) for row in rows]
    if binds or documents:
        for n, row_values in enumerate(values):
            row_values = values[n] = list(row_values)
            for i, bind in binds:
                if row_values[i] is not None:
                    row_values[i] = bind(row_values[i], dialect)
            for i in documents:
                row_values[i] = _json_text(row_values[i])
    driver = conn.connection.driver_connection
    ensure_transaction(driver)  # a request's first write (gateway/pg.py)
    with driver.cursor() as cursor:
        if len(values) <= COPY_FROM_ROWS:
            one = "(" + ", ".join(["%s"] * len(keys)) + ")"
            cursor.execute(f"INSERT INTO {target} VALUES " + ", ".join([one] * len(values)),
                           [v for row_values in values for v in row_values])
            return
        with cursor.copy(f"COPY {target} FROM STDIN") as copy:
            for row_values in values:
                copy.write_row(row_values)
