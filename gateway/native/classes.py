"""/classes: create, get, update, delete and query objects of the PHR classes."""
from __future__ import annotations

from gateway.errors import InvalidInput
from gateway.native import users as user_views
from gateway.native.context import NativeRequest
from gateway.native.params import get_args, query_args
from gateway.native.router import Reply, route
from gateway.services.codec import iso
from gateway.services.query import get_object, run_query

_USER_CLASSES = {"_User": "users", "_Session": "sessions"}


def _body(req: NativeRequest) -> dict:
    if req.body is None:
        return {}
    return req.body


@route("/classes/<class_name>", "GET")
def find(req: NativeRequest, class_name: str) -> Reply:
    """Query a class."""
    if class_name == "_User":
        return user_views.find_users(req)
    result = run_query(req.session, req.principal, class_name, query_args(req.params), req.file_url)
    body = {"results": result.results}
    if result.count is not None:
        body["count"] = result.count
    return Reply(body)


@route("/classes/<class_name>", "POST")
def create(req: NativeRequest, class_name: str) -> Reply:
    """Create an object."""
    if class_name == "_User":
        return user_views.signup(req)
    written = req.objects().create(class_name, _body(req))
    row = written.row
    return Reply(
        {"objectId": row.object_id, "createdAt": iso(row.created_at), **written.echo},
        status=201, headers={"Location": f"{req.server_url}/classes/{class_name}/{row.object_id}"},
    )


@route("/classes/<class_name>/<object_id>", "GET")
def get(req: NativeRequest, class_name: str, object_id: str) -> Reply:
    """Get one object."""
    if class_name in _USER_CLASSES:
        return user_views.get_user(req, object_id) if class_name == "_User" else user_views.get_session(req, object_id)
    include, keys = get_args(req.params)
    return Reply(get_object(req.session, req.principal, class_name, object_id, include=include, keys=keys,
                            file_url=req.file_url))


@route("/classes/<class_name>/<object_id>", "PUT")
def update(req: NativeRequest, class_name: str, object_id: str) -> Reply:
    """Update an object (plain values and __op operators)."""
    if class_name == "_User":
        return user_views.update_user(req, object_id)
    body = _body(req)
    if not body:
        raise InvalidInput("Nothing to update.")
    written = req.objects().update(class_name, object_id, body)
    return Reply({"updatedAt": iso(written.row.updated_at), **written.echo})


@route("/classes/<class_name>/<object_id>", "DELETE")
def delete(req: NativeRequest, class_name: str, object_id: str) -> Reply:
    """Delete an object (soft delete: FHIR answers 410 Gone for it)."""
    if class_name in _USER_CLASSES:
        return user_views.delete_user(req, object_id) if class_name == "_User" else user_views.delete_session(req, object_id)
    req.objects().delete(class_name, object_id)
    return Reply({})
