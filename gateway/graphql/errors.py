"""The GraphQL face's one error format: GraphQL's `errors` array, each error carrying Parse's code in
`extensions.code` (the native face's `{code, error}`, in GraphQL's shape).

- a domain error raised by a service keeps its Parse code and message (101 not found or not visible,
  111 wrong type, 142 validation, 119 forbidden, 209 invalid session, ...);
- a value of the wrong type caught by GraphQL itself (a literal or a variable) is Parse's 111;
- any other invalid document (syntax, unknown field or argument) is 102, an invalid query;
- anything else is an internal error: code 1 and a fixed message; the details go to the log only.
"""
from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError

from gateway.errors import DomainError

log = logging.getLogger("gateway.graphql")

INCORRECT_TYPE = 111
INVALID_QUERY = 102
INTERNAL = 1

#: Messages of graphql-core's input coercion and value validation (a value of the wrong type).
_TYPE_MESSAGES = ("Variable '$", "Expected value of type", "cannot represent", "Expected type")


def parse_error(message: str, code: int) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code}}


def format_error(error: GraphQLError) -> dict[str, Any]:
    out = error.formatted
    original = error.original_error
    if isinstance(original, DomainError):
        out["message"] = original.message
        code = original.parse_code
    elif error.path is None:  # found before execution: the document or the variables
        code = INCORRECT_TYPE if any(m in error.message for m in _TYPE_MESSAGES) else INVALID_QUERY
    else:
        # A bug or an outage, never the client's data: no message, value or trace in the answer.
        log.error("unhandled %s in GraphQL field %s", type(original or error).__name__,
                  ".".join(str(p) for p in error.path), exc_info=original)
        out["message"] = "Internal server error."
        code = INTERNAL
    out["extensions"] = {**(out.get("extensions") or {}), "code": code}
    return out
