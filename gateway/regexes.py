"""Parse's `$regex` on both databases: which patterns are accepted, and how long one may run.

PostgreSQL matches with its own engine (Advanced Regular Expressions), SQLite with the REGEXP function we
give it (Python). A pattern is accepted when Python compiles it, it is at most MAX_PATTERN characters, its
counted repetitions stay within PostgreSQL's RE_DUP_MAX (255) and, on PostgreSQL, the database compiles it
too (asked once per pattern, in a savepoint): a pattern one engine refuses is the caller's error (Parse
102 "Invalid regular expression"), never a database error. A pattern that compiles can still take
exponential time (backreferences: `(.*)(.*)(.*)\\3\\2\\1$` on 500 characters runs for minutes on
PostgreSQL), so a query holding one runs under a time limit (PostgreSQL's statement_timeout; on SQLite the
`regex` module's timeout, as Python's `re` cannot be interrupted) and past it answers Parse 124 "Timeout".
"""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import regex
from sqlalchemy import literal, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gateway.errors import InvalidQuery

#: Longest pattern accepted (characters).
MAX_PATTERN = 1000
#: How long a query holding a `$regex` may run.
TIME_LIMIT_SECONDS = 2.0
#: PostgreSQL's largest repetition count (RE_DUP_MAX, src/include/regex/regex.h).
_MAX_COUNT = 255
_COUNTED = re.compile(r"(?<!\\)\{(\d+)(?:,(\d*))?\}")
#: Parse Server's code for a query that ran out of time (Parse.Error.TIMEOUT).
TIMEOUT = 124

_postgres_accepts: dict[tuple[str, str | None], bool] = {}
_state = threading.local()


class RegexTimeout(InvalidQuery):
    parse_code = TIMEOUT


def check(pattern: Any, options: Any, session: Session) -> str | None:
    """The flags ("i" or None) of a valid `$regex` with its `$options`; InvalidQuery otherwise."""
    if not isinstance(pattern, str):
        raise InvalidQuery("$regex must be a string")
    if not isinstance(options, str) or set(options) - set("imsx"):
        raise InvalidQuery("bad $options value")
    if len(pattern) > MAX_PATTERN:
        raise InvalidQuery(f"Invalid regular expression: longer than {MAX_PATTERN} characters")
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError):
        raise InvalidQuery("Invalid regular expression") from None
    for m in _COUNTED.finditer(pattern):
        if any(n and int(n) > _MAX_COUNT for n in m.groups()):
            raise InvalidQuery(f"Invalid regular expression: a repetition count above {_MAX_COUNT}")
    flags = "i" if "i" in options else None
    if session.get_bind().dialect.name == "postgresql" and not _accepted_by_postgres(session, pattern, flags):
        raise InvalidQuery("Invalid regular expression")
    return flags


def _accepted_by_postgres(session: Session, pattern: str, flags: str | None) -> bool:
    key = (pattern, flags)
    known = _postgres_accepts.get(key)
    if known is None:
        try:
            with session.begin_nested():  # a refused pattern aborts only the savepoint
                session.execute(select(literal("").regexp_match(pattern, flags=flags)))
            known = True
        except DBAPIError:
            known = False
        if len(_postgres_accepts) >= 4096:
            _postgres_accepts.clear()
        _postgres_accepts[key] = known
    return known


@contextmanager
def time_limit(session: Session) -> Iterator[None]:
    """Run the block's statements (a query holding a `$regex`) under TIME_LIMIT_SECONDS; past it, Parse 124.
    On PostgreSQL inside a savepoint, so that a cancelled statement leaves the request's transaction usable
    (and the reads run on the session's connection, where the limit is set)."""
    if session.get_bind().dialect.name != "postgresql":
        _state.deadline = time.monotonic() + TIME_LIMIT_SECONDS
        _state.timed_out = False
        try:
            yield
        except Exception:
            if getattr(_state, "timed_out", False):
                raise RegexTimeout("Timeout: the regular expression took too long") from None
            raise
        finally:
            _state.deadline = None
        return
    try:
        with session.begin_nested():
            before = session.execute(text("SELECT current_setting('statement_timeout'), "
                                          "set_config('statement_timeout', :ms, true)"),
                                     {"ms": str(int(TIME_LIMIT_SECONDS * 1000))}).scalar()
            yield
            session.execute(text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": before})
    except Exception as e:
        if _sqlstate(e) == "57014":  # query_canceled
            raise RegexTimeout("Timeout: the regular expression took too long") from None
        raise


def _sqlstate(e: BaseException) -> str | None:
    """The SQLSTATE of a database error, raised by SQLAlchemy or by the driver directly (prepared reads)."""
    orig = e.orig if isinstance(e, DBAPIError) else e
    return getattr(orig, "sqlstate", None)


def sqlite_regexp(pattern: str, value: Any) -> bool:
    """SQLite's REGEXP (gateway.db): Python's syntax, with an inline (?i) for `$options: "i"`, bounded in
    time by the query's time_limit (or TIME_LIMIT_SECONDS for one match outside one)."""
    if value is None:
        return False
    flags = 0
    if pattern.startswith("(?i)"):
        flags, pattern = regex.IGNORECASE, pattern[4:]
    deadline = getattr(_state, "deadline", None)
    left = TIME_LIMIT_SECONDS if deadline is None else max(deadline - time.monotonic(), 0.001)
    try:
        return regex.search(pattern, str(value), flags, timeout=left) is not None
    except TimeoutError:
        _state.timed_out = True
        raise
    except regex.error:
        return False
