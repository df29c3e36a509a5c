"""SELECTs compiled once and run on the database driver's connection directly, for the hottest reads.

A native GET by id spent ~0.4 ms of CPU in the ORM (~0.17 ms through SQLAlchemy Core's execution) to run
a statement the driver itself runs in ~0.035 ms (bench/micro.py, docs/PERFORMANCE.md). A `Prepared` keeps
what SQLAlchemy's execution works out on every call: the SQL text for the dialect, the values that never
change (the access rule's ids, a query's constants), how each value is bound (the types' bind processors)
and how each result column is read (their result processors). A run binds the caller's values by name,
evaluates the per-run values (the access rule's NOW, so grants expire by the clock of the query), sends
the text (prepared on the server by psycopg) and returns rows that read like the ORM's plain rows
(`row.object_id`).

An expanding IN (`column.in_([...])` with values) is expanded once, when the statement is prepared, so its
values are constants of the Prepared; its parameters cannot be given per run.
"""
from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from gateway.services import write_buffer

#: Prepared statements per process: per (statement kind, class, principal), and per exact query. Each is a
#: few KB of SQL text and values.
MAX_PREPARED = 2048
_PREPARED: dict = {}


class Prepared:
    """One SELECT, compiled for one dialect."""

    __slots__ = ("sql", "positional", "names", "fixed", "per_run", "processors", "row_type", "types", "dialect",
                 "readers")

    def __init__(self, stmt: Select, dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        binds = compiled.binds
        self.processors: dict[str, Callable] = {}
        self.per_run: dict[str, Callable] = {}
        values: dict[str, Any] = {}
        for name, bind in binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[name] = processor
            if bind.callable is not None:
                self.per_run[name] = bind.callable
            elif not bind.required:
                values[name] = bind.value
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        self.names = tuple(compiled.positiontup or ()) if self.positional else tuple(binds)
        if compiled.post_compile_params:
            if any(b.key in self.per_run or b.required for b in compiled.post_compile_params):
                raise ValueError("an expanding IN of a prepared statement must hold its values")
            # Placeholders for what is given per run; only the expanding parameters' values matter here.
            expanded = compiled.construct_expanded_state({**{n: None for n in binds if n not in values}, **values})
            self.sql = expanded.statement
            self.names = tuple(expanded.positiontup or ()) if self.positional else tuple(expanded.parameters)
            for name, processor in (expanded.processors or {}).items():
                if processor is not None:
                    self.processors.setdefault(name, processor)
            given = set(self.per_run) | {n for n, b in binds.items() if b.required}
            values = {n: v for n, v in expanded.parameters.items() if n not in given}
        self.fixed = {n: (self.processors[n](v) if n in self.processors and v is not None else v)
                      for n, v in values.items()}
        columns = list(stmt.selected_columns)
        # Rows are read by attribute name (an ORM column's attribute may differ from its column name); a name
        # that comes twice (a sort key that is also a served column) is read by position.
        self.row_type = namedtuple("Row", [d["name"] for d in stmt.column_descriptions], rename=True)
        self.types = tuple(c.type.dialect_impl(dialect) for c in columns)
        self.dialect = dialect
        self.readers: tuple | None = None  # from the first run's cursor.description (the driver's type codes)

    def params(self, values: dict[str, Any]) -> dict[str, Any] | tuple:
        out = dict(self.fixed)
        for name, make in self.per_run.items():
            value = make()
            processor = self.processors.get(name)
            out[name] = processor(value) if processor else value
        for name, value in values.items():
            processor = self.processors.get(name)
            out[name] = processor(value) if processor and value is not None else value
        if self.positional:
            return tuple(out[name] for name in self.names)
        return out

    def rows(self, session: Session, values: dict[str, Any] | None = None) -> list:
        """Run with `values` for the statement's named parameters; rows in the statement's column order."""
        params = self.params(values or {})
        with read_connection(session) as conn:
            cursor = conn.cursor()
            try:
                if self.positional:
                    cursor.execute(self.sql, params)
                else:
                    cursor.execute(self.sql, params, prepare=True)
                raw = cursor.fetchall()
                readers = self.readers
                if readers is None:
                    readers = self.readers = tuple(
                        t.result_processor(self.dialect, d[1]) for t, d in zip(self.types, cursor.description))
            finally:
                cursor.close()
        make = self.row_type._make
        if not any(readers):
            return [make(r) for r in raw]
        return [make([read(v) if read else v for read, v in zip(readers, r)]) for r in raw]

    def scalar(self, session: Session, values: dict[str, Any] | None = None) -> Any:
        rows = self.rows(session, values)
        return rows[0][0] if rows else None


def prepared(session: Session, key: tuple, build: Callable[[], Select]) -> Prepared:
    """The Prepared form of the statement `build()` returns, kept under `key`, which must name everything
    the statement depends on (the principal, the query's values) for the session's dialect. What `build`
    raises (an invalid query) is raised and nothing is kept."""
    dialect = session.get_bind().dialect
    full = (dialect.name, *key)
    try:
        return _PREPARED[full]
    except KeyError:
        pass
    except TypeError:  # an unhashable part (never expected): prepare each time
        return Prepared(build(), dialect)
    stmt = Prepared(build(), dialect)
    if len(_PREPARED) >= MAX_PREPARED:
        _PREPARED.pop(next(iter(_PREPARED)), None)  # the oldest
    _PREPARED[full] = stmt
    return stmt


@contextmanager
def read_connection(session: Session) -> Iterator[Any]:
    """The driver connection a read runs on: the session's own once it has one (it may hold this
    request's uncommitted writes, sent first, or be a test's outer transaction), else one from the pool for just this
    read, in autocommit on PostgreSQL (no BEGIN/COMMIT around a single SELECT; the pool's check-in hook
    puts it back as it was)."""
    bind = session.get_bind()
    # As the ORM's autoflush and the write buffer do before any statement of the session: pending writes
    # go out first, so the read sees them.
    buffer = write_buffer.current(session)
    if buffer is not None and buffer.rows:
        buffer.send_rows()
    if session.autoflush and (session.new or session.dirty or session.deleted):
        session.flush()
    if isinstance(bind, Connection) or session.in_transaction():
        yield session.connection().connection.dbapi_connection
        return
    fairy = bind.raw_connection()
    try:
        conn = fairy.dbapi_connection
        if bind.dialect.name == "postgresql":
            conn.autocommit = True
        yield conn
    finally:
        fairy.close()
