"""/schemas: the fixed PHR schema, read with the master key. Classes and fields cannot be changed."""
from __future__ import annotations

from gateway.errors import Forbidden, InvalidInput
from gateway.native.context import NativeRequest, require_master
from gateway.native.router import Reply, route
from gateway.schema import class_spec, registry


@route("/schemas", "GET")
def all_schemas(req: NativeRequest) -> Reply:
    """Every class with its fields."""
    require_master(req)
    return Reply({"results": [spec.schema_json() for spec in registry().values()]})


@route("/schemas/<class_name>", "GET")
def one_schema(req: NativeRequest, class_name: str) -> Reply:
    """One class's fields."""
    require_master(req)
    spec = class_spec(class_name)
    if spec is None:
        raise InvalidInput(f"Class {class_name} does not exist.", parse_code=103)
    return Reply(spec.schema_json())


@route("/schemas/<class_name>", "POST", "PUT", "DELETE")
def change_schema(req: NativeRequest, class_name: str) -> Reply:
    """Refused: the PHR schema is fixed, so that every face and every mapping agrees on it."""
    require_master(req)
    if req.method == "POST" and class_spec(class_name) is not None:
        raise InvalidInput(f"Class {class_name} already exists.", parse_code=103)
    raise Forbidden("The PHR schema is fixed: classes and fields cannot be added, changed or removed.")
