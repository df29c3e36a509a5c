"""The GraphQL schema, generated from the class registry (gateway/schema.py) in Parse Server's style:

- one object type per class (`_User` shows as `User`), implementing `Node` (Relay global `id`) with
  `objectId`, `createdAt`, `updatedAt`, `ACL` and the class's fields; a pointer is the target's type;
- `<class>(id)` and `<classes>(where, order, skip, first, after, last, before)` returning a Relay
  connection `{ edges { cursor node } pageInfo count }`;
- `create<Class>`, `update<Class>`, `delete<Class>` taking `input: { id, fields }` (Relay mutations);
- `viewer { sessionToken user }`, `node(id)`, `health`;
- `signUp(input: {fields})`, `logIn(input: {username, password})` answering `{ viewer }`, and
  `logOut(input: {})` answering `{ ok }`: the native face's /users, /login and /logout (UserService).

Field types follow Parse: String, Number (Float), Boolean, Date, File (`FileInfo { name url }`),
Object, Array; our Mixed (number or text) is `Any`. Required fields are not NonNull in the inputs: the
write path checks them and answers with Parse's codes, so every face reports the same error.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLEnumValue,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
)

from gateway.graphql import resolvers
from gateway.graphql.scalars import ANY, DATE, FILE, OBJECT, to_global_id
from gateway.schema import ClassSpec, FieldSpec, registry

#: Classes the GraphQL face shows; sessions stay on /parse/sessions, as in Parse Server.
HIDDEN_CLASSES = ("_Session",)
#: Classes without create/update/delete mutations: accounts are made by signup or the CLI.
READ_ONLY_CLASSES = ("_User", "AuditLog")  # AuditLog: append-only, written by the server alone


def gql_name(class_name: str) -> str:
    return class_name.lstrip("_")


def lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def plural(name: str) -> str:
    """The list query's name, as Parse Server's `pluralize` gives it for our class names."""
    if name.endswith("y") and name[-2:-1] not in "aeiou":
        return name[:-1] + "ies"
    if name.endswith(("s", "x", "z", "ch", "sh")):
        return name + "es"
    return name + "s"


def classes() -> dict[str, ClassSpec]:
    return {n: s for n, s in registry().items() if n not in HIDDEN_CLASSES}


# ---- shared types ----

def _nn(t):
    return GraphQLNonNull(t)


FILE_INFO = GraphQLObjectType("FileInfo", {
    "name": GraphQLField(_nn(GraphQLString), description="The file name."),
    "url": GraphQLField(_nn(GraphQLString), description="A download URL signed for the caller."),
})

FILE_INPUT = GraphQLInputObjectType("FileInput", {
    "file": GraphQLInputField(FILE, description="A file uploaded through /parse/files (its name)."),
    "unlink": GraphQLInputField(GraphQLBoolean, description="Unlink the file from the object."),
})

_ACL_ENTRY = {"read": GraphQLField(GraphQLBoolean), "write": GraphQLField(GraphQLBoolean)}


def _acl_list(prefix: str | None, key: str, value_of: Callable[[str], Any]):
    def resolve(acl: dict, _info):
        out = []
        for rule, rights in (acl or {}).items():
            is_role = rule.startswith("role:")
            if rule == "*" or is_role != (prefix == "role:"):
                continue
            out.append({key: value_of(rule), "read": bool(rights.get("read")), "write": bool(rights.get("write"))})
        return out or None

    return resolve


ACL = GraphQLObjectType("ACL", {
    "users": GraphQLField(
        GraphQLList(_nn(GraphQLObjectType("UserACL", {"userId": GraphQLField(_nn(GraphQLID)), **_ACL_ENTRY}))),
        resolve=_acl_list(None, "userId", lambda rule: to_global_id("_User", rule))),
    "roles": GraphQLField(
        GraphQLList(_nn(GraphQLObjectType("RoleACL", {"roleName": GraphQLField(_nn(GraphQLID)), **_ACL_ENTRY}))),
        resolve=_acl_list("role:", "roleName", lambda rule: rule[len("role:"):])),
    "public": GraphQLField(
        GraphQLObjectType("PublicACL", dict(_ACL_ENTRY)),
        resolve=lambda acl, _info: ({"read": bool(acl["*"].get("read")), "write": bool(acl["*"].get("write"))}
                                    if acl and "*" in acl else None)),
}, description="The object's access control list (Parse's ACL).")

_ACL_RIGHTS = {"read": GraphQLInputField(_nn(GraphQLBoolean)), "write": GraphQLInputField(_nn(GraphQLBoolean))}
ACL_INPUT = GraphQLInputObjectType("ACLInput", {
    "users": GraphQLInputField(GraphQLList(_nn(GraphQLInputObjectType(
        "UserACLInput", {"userId": GraphQLInputField(_nn(GraphQLID)), **_ACL_RIGHTS})))),
    "roles": GraphQLInputField(GraphQLList(_nn(GraphQLInputObjectType(
        "RoleACLInput", {"roleName": GraphQLInputField(_nn(GraphQLString)), **_ACL_RIGHTS})))),
    "public": GraphQLInputField(GraphQLInputObjectType("PublicACLInput", dict(_ACL_RIGHTS))),
})

PAGE_INFO = GraphQLObjectType("PageInfo", {
    "hasNextPage": GraphQLField(_nn(GraphQLBoolean)),
    "hasPreviousPage": GraphQLField(_nn(GraphQLBoolean)),
    "startCursor": GraphQLField(GraphQLString),
    "endCursor": GraphQLField(GraphQLString),
})

NODE = GraphQLInterfaceType(
    "Node", {"id": GraphQLField(_nn(GraphQLID), description="The Relay global id.")},
    resolve_type=lambda obj, _info, _type: gql_name(obj["className"]),
)


def _where_input(name: str, scalar, ops: tuple[str, ...]) -> GraphQLInputObjectType:
    types = {
        "equalTo": scalar, "notEqualTo": scalar, "lessThan": scalar, "lessThanOrEqualTo": scalar,
        "greaterThan": scalar, "greaterThanOrEqualTo": scalar, "in": GraphQLList(scalar),
        "notIn": GraphQLList(scalar), "exists": GraphQLBoolean, "matchesRegex": GraphQLString,
        "options": GraphQLString, "contains": GraphQLList(scalar),
    }
    return GraphQLInputObjectType(name, {op: GraphQLInputField(types[op]) for op in ops})


_ORDERED = ("equalTo", "notEqualTo", "lessThan", "lessThanOrEqualTo", "greaterThan", "greaterThanOrEqualTo",
            "in", "notIn", "exists")
ID_WHERE = _where_input("IdWhereInput", GraphQLID, _ORDERED)
STRING_WHERE = _where_input("StringWhereInput", GraphQLString, _ORDERED + ("matchesRegex", "options"))
NUMBER_WHERE = _where_input("NumberWhereInput", GraphQLFloat, _ORDERED)
DATE_WHERE = _where_input("DateWhereInput", DATE, _ORDERED)
BOOLEAN_WHERE = _where_input("BooleanWhereInput", GraphQLBoolean, ("equalTo", "notEqualTo", "exists"))
FILE_WHERE = _where_input("FileWhereInput", GraphQLString, ("equalTo", "notEqualTo", "in", "notIn", "exists"))
ARRAY_WHERE = _where_input("ArrayWhereInput", ANY, ("equalTo", "notEqualTo", "in", "notIn", "exists", "contains"))
OBJECT_WHERE = _where_input("ObjectWhereInput", OBJECT, ("exists",))
ANY_WHERE = _where_input("AnyWhereInput", ANY, _ORDERED + ("matchesRegex", "options"))

_SCALAR_OUT = {"String": GraphQLString, "Number": GraphQLFloat, "Boolean": GraphQLBoolean, "Date": DATE,
               "Object": OBJECT, "Mixed": ANY, "Array": GraphQLList(ANY)}
_SCALAR_IN = {"String": GraphQLString, "Number": GraphQLFloat, "Boolean": GraphQLBoolean, "Date": DATE,
              "Object": OBJECT, "Mixed": ANY, "Array": GraphQLList(ANY), "File": FILE_INPUT}
_WHERE = {"String": STRING_WHERE, "Number": NUMBER_WHERE, "Boolean": BOOLEAN_WHERE, "Date": DATE_WHERE,
          "Object": OBJECT_WHERE, "Mixed": ANY_WHERE, "Array": ARRAY_WHERE, "File": FILE_WHERE}


class Builder:
    """Builds the per-class types; pointers refer to each other, so fields are thunks."""

    def __init__(self, specs: dict[str, ClassSpec]):
        self.specs = specs
        self.objects: dict[str, GraphQLObjectType] = {}
        self.wheres: dict[str, GraphQLInputObjectType] = {}
        self.pointer_inputs: dict[str, GraphQLInputObjectType] = {}
        self.pointer_wheres: dict[str, GraphQLInputObjectType] = {}
        for name, spec in specs.items():
            self.objects[name] = self._object(spec)
            self.wheres[name] = self._where(spec)

    # -- output --

    def _object(self, spec: ClassSpec) -> GraphQLObjectType:
        def fields() -> dict[str, GraphQLField]:
            out = {
                "id": GraphQLField(_nn(GraphQLID), resolve=lambda o, _i: to_global_id(spec.name, o["objectId"])),
                "objectId": GraphQLField(_nn(GraphQLID)),
                "createdAt": GraphQLField(_nn(DATE)),
                "updatedAt": GraphQLField(_nn(DATE)),
                "ACL": GraphQLField(_nn(ACL), resolve=lambda o, _i: o.get("ACL") or {}),
            }
            for name, f in spec.fields.items():
                out[name] = self._output_field(f)
            return out

        return GraphQLObjectType(gql_name(spec.name), fields, interfaces=[NODE],
                                 description=f"The {spec.name} class.")

    def _output_field(self, f: FieldSpec) -> GraphQLField:
        if f.type == "Pointer":
            if f.target not in self.specs:
                return GraphQLField(OBJECT, resolve=_get(f.name))
            # Filled in by the root resolver's batched include (same access policy); a pointer the
            # caller may not read stays a bare pointer in the native JSON and shows here as null.
            return GraphQLField(self.objects[f.target], resolve=_included(f.name))
        if f.type == "File":
            return GraphQLField(FILE_INFO, resolve=_get(f.name))
        return GraphQLField(_SCALAR_OUT[f.type], resolve=_get(f.name))

    # -- where --

    def _where(self, spec: ClassSpec) -> GraphQLInputObjectType:
        name = gql_name(spec.name)

        def fields() -> dict[str, GraphQLInputField]:
            out = {
                "id": GraphQLInputField(ID_WHERE), "objectId": GraphQLInputField(ID_WHERE),
                "createdAt": GraphQLInputField(DATE_WHERE), "updatedAt": GraphQLInputField(DATE_WHERE),
            }
            for fname, f in spec.fields.items():
                if f.type == "Pointer":
                    if f.target in self.specs:
                        out[fname] = GraphQLInputField(self._pointer_where(f.target))
                else:
                    out[fname] = GraphQLInputField(_WHERE[f.type])
            this = self.wheres[spec.name]
            for op in ("OR", "AND", "NOR"):
                out[op] = GraphQLInputField(GraphQLList(_nn(this)))
            return out

        return GraphQLInputObjectType(f"{name}WhereInput", fields)

    def _pointer_where(self, target: str) -> GraphQLInputObjectType:
        if target not in self.pointer_wheres:
            self.pointer_wheres[target] = GraphQLInputObjectType(f"{gql_name(target)}PointerWhereInput", lambda: {
                "have": GraphQLInputField(self.wheres[target], description="The pointed object matches this."),
                "haveNot": GraphQLInputField(self.wheres[target]),
                "exists": GraphQLInputField(GraphQLBoolean),
            })
        return self.pointer_wheres[target]

    # -- order, connection, inputs --

    def order(self, spec: ClassSpec) -> GraphQLEnumType:
        names = ["id", "objectId", "createdAt", "updatedAt"] + [
            n for n, f in spec.fields.items() if f.type not in ("Array", "Object")]
        values = {}
        for n in names:
            values[f"{n}_ASC"] = GraphQLEnumValue("objectId" if n == "id" else n)
            values[f"{n}_DESC"] = GraphQLEnumValue("-objectId" if n == "id" else f"-{n}")
        return GraphQLEnumType(f"{gql_name(spec.name)}Order", values)

    def connection(self, spec: ClassSpec) -> GraphQLObjectType:
        name = gql_name(spec.name)
        edge = GraphQLObjectType(f"{name}Edge", {
            "cursor": GraphQLField(_nn(GraphQLString)),
            "node": GraphQLField(self.objects[spec.name]),
        })
        return GraphQLObjectType(f"{name}Connection", {
            "edges": GraphQLField(GraphQLList(edge)),
            "pageInfo": GraphQLField(_nn(PAGE_INFO)),
            "count": GraphQLField(_nn(GraphQLInt), description="How many objects match (all pages)."),
        })

    def pointer_input(self, target: str) -> GraphQLInputObjectType:
        if target not in self.pointer_inputs:
            self.pointer_inputs[target] = GraphQLInputObjectType(f"{gql_name(target)}PointerInput", {
                "link": GraphQLInputField(GraphQLID, description="The global or object id to point to."),
            })
        return self.pointer_inputs[target]

    def fields_input(self, spec: ClassSpec, verb: str) -> GraphQLInputObjectType:
        out: dict[str, GraphQLInputField] = {"ACL": GraphQLInputField(ACL_INPUT)}
        for name, f in spec.fields.items():
            if f.type == "Pointer":
                out[name] = GraphQLInputField(self.pointer_input(f.target))
            else:
                out[name] = GraphQLInputField(_SCALAR_IN[f.type])
        return GraphQLInputObjectType(f"{verb}{gql_name(spec.name)}FieldsInput", out)


def _get(name: str):
    return lambda obj, _info: obj.get(name)


def _included(name: str):
    def resolve(obj, _info):
        value = obj.get(name)
        return value if isinstance(value, dict) and value.get("__type") == "Object" else None

    return resolve


def _mutation(b: Builder, spec: ClassSpec, verb: str) -> GraphQLField:
    name = gql_name(spec.name)
    key = lower_first(name)
    inputs: dict[str, GraphQLInputField] = {}
    if verb != "Create":
        inputs["id"] = GraphQLInputField(_nn(GraphQLID), description="The global or object id.")
    if verb != "Delete":
        inputs["fields"] = GraphQLInputField(b.fields_input(spec, verb))
    return _relay(f"{lower_first(verb)}{name}", inputs, {key: GraphQLField(_nn(b.objects[spec.name]))},
                  resolvers.mutation(spec, verb.lower(), key), f"{verb} an object of the {spec.name} class.")


def _relay(name: str, inputs: dict[str, GraphQLInputField], outputs: dict[str, GraphQLField], resolve,
           description: str, *, input_required: bool = True) -> GraphQLField:
    """A Relay mutation `name(input: {<inputs>, clientMutationId})` answering
    `{<outputs>, clientMutationId}`."""
    kind = name[:1].upper() + name[1:]
    given = GraphQLInputObjectType(f"{kind}Input",
                                   {**inputs, "clientMutationId": GraphQLInputField(GraphQLString)})
    payload = GraphQLObjectType(f"{kind}Payload",
                                {**outputs, "clientMutationId": GraphQLField(GraphQLString)})
    return GraphQLField(payload, args={"input": GraphQLArgument(_nn(given) if input_required else given)},
                        resolve=resolve, description=description)


def _user_mutations(viewer: GraphQLObjectType) -> dict[str, GraphQLField]:
    """Parse Server's signUp, logIn and logOut (its usersMutations)."""
    fields = GraphQLInputObjectType("CreateUserFieldsInput", {
        name: GraphQLInputField(GraphQLString) for name in ("username", "password", "email", "role")})
    return {
        "signUp": _relay("signUp", {"fields": GraphQLInputField(fields)},
                         {"viewer": GraphQLField(_nn(viewer))}, resolvers.sign_up,
                         "Create an account and a session for it (a patient, unless the master key asks "
                         "for another role)."),
        "logIn": _relay("logIn", {"username": GraphQLInputField(_nn(GraphQLString)),
                                  "password": GraphQLInputField(_nn(GraphQLString))},
                        {"viewer": GraphQLField(_nn(viewer))}, resolvers.log_in,
                        "Log in: a new session token for the account."),
        "logOut": _relay("logOut", {}, {"ok": GraphQLField(_nn(GraphQLBoolean))}, resolvers.log_out,
                         "End the session of the request's session token (always ok).", input_required=False),
    }


@cache
def build() -> GraphQLSchema:
    specs = classes()
    b = Builder(specs)
    viewer = GraphQLObjectType("Viewer", {
        "sessionToken": GraphQLField(_nn(GraphQLString)),
        "user": GraphQLField(_nn(b.objects["_User"])),
    })
    query: dict[str, GraphQLField] = {
        "health": GraphQLField(_nn(GraphQLBoolean), resolve=lambda *_: True),
        "viewer": GraphQLField(_nn(viewer), resolve=resolvers.viewer),
        "node": GraphQLField(NODE, args={"id": GraphQLArgument(_nn(GraphQLID))}, resolve=resolvers.node),
    }
    mutation: dict[str, GraphQLField] = _user_mutations(viewer)
    for cname, spec in specs.items():
        key = lower_first(gql_name(cname))
        query[key] = GraphQLField(
            _nn(b.objects[cname]), args={"id": GraphQLArgument(_nn(GraphQLID))},
            resolve=resolvers.get(spec), description=f"One {cname} object by its global or object id.")
        query[plural(key)] = GraphQLField(
            _nn(b.connection(spec)),
            args={
                "where": GraphQLArgument(b.wheres[cname]),
                "order": GraphQLArgument(GraphQLList(_nn(b.order(spec)))),
                "skip": GraphQLArgument(GraphQLInt), "first": GraphQLArgument(GraphQLInt),
                "after": GraphQLArgument(GraphQLString), "last": GraphQLArgument(GraphQLInt),
                "before": GraphQLArgument(GraphQLString),
            },
            resolve=resolvers.find(spec), description=f"Find {cname} objects.")
        if cname not in READ_ONLY_CLASSES:
            for verb in ("Create", "Update", "Delete"):
                mutation[f"{lower_first(verb)}{gql_name(cname)}"] = _mutation(b, spec, verb)
    return GraphQLSchema(
        query=GraphQLObjectType("Query", query), mutation=GraphQLObjectType("Mutation", mutation),
        types=list(b.objects.values()),
    )
