"""The gateway's own log (logger "gateway", which is also Flask's app.logger): one JSON object per line on
stderr, with the request id of the request being served and, for errors, the stack.

A stack is its frames (file, line, function) and the exception's type: never the exception's message, which
can quote the values that failed (a database error carries the statement's parameters: a patient's data).
"""
from __future__ import annotations

import logging
import sys
import traceback
from datetime import datetime, timezone

import orjson

from gateway.ops.wsgi import current_request_id

LOGGER = "gateway"


def stack(exc: BaseException) -> list[str]:
    """Frames and exception types of an exception and its causes, oldest first, without any message."""
    out: list[str] = []
    seen: set[int] = set()
    chain: list[BaseException] = []
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    for e in reversed(chain):
        out.extend(f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(e.__traceback__))
        out.append(f"{type(e).__module__}.{type(e).__qualname__}")
    return out


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, timezone.utc),
                "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
                "request_id": current_request_id.get()}
        if record.exc_info and record.exc_info[1] is not None:
            line["error"] = type(record.exc_info[1]).__name__
            line["stack"] = stack(record.exc_info[1])
        return orjson.dumps(line, option=orjson.OPT_UTC_Z, default=str).decode()


class _Stderr(logging.Handler):
    """Writes to whatever sys.stderr is when a record comes (the test runner swaps it per test)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must never break a request
            self.handleError(record)


def configure() -> None:
    """Once per process: the gateway's records go to our handler only (not to handlers an embedding server
    put on the root logger, whose formatters would print exception messages)."""
    logger = logging.getLogger(LOGGER)
    if any(isinstance(h, _Stderr) for h in logger.handlers):
        return
    handler = _Stderr()
    handler.setFormatter(JsonLines())
    logger.addHandler(handler)
    logger.propagate = False
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
