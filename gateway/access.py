"""Who may do what: the ONE access policy every face asks (DESIGN.md, 'Who may do what').

Rules are SQL predicates, so the native API, the FHIR API, exports and events filter inside the query
(never in Python) and a denied object looks exactly like a missing one.

- The owner of a profile (Profile.user) reads and writes everything of that profile.
- An active SharedAccess (not revoked, not expired, not deleted) lets its grantee user, and its provider
  (the provider's own login and the back-end clients registered for it), read the categories in its
  scope; with accessLevel "write" also create and update them (never delete). The grantee always sees
  the Profile itself.
- Explicit ACL entries add access, with Parse's semantics ("*", a user id, "role:<role>"); role entries
  match the user's role (patient, caregiver, provider, admin), as the PHR has no _Role class.
- The master key bypasses all of this. An admin user manages providers and may read and amend the audit
  log; an admin is deliberately NOT given anyone's health data.
- Provider records are a directory: every signed-in user reads them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import (
    ColumnElement, and_, bindparam, exists, false, literal_column, or_, select, true, tuple_,
)
from sqlalchemy.orm import Session

from gateway.db import UTCDateTime, utcnow
from gateway.services.json_sql import json_array_items
from gateway.errors import Forbidden, NotFound
from gateway.models import (
    AclEntry, AuditLog, Profile, ProfileRecord, Provider, Record, SharedAccess, User,
)
from gateway.models.user import Session as UserSession
from gateway.scopes import Scopes
from gateway.services.json_sql import json_array_contains

#: Resource types outside any patient compartment: a patient-context token may still read the
#: practitioners and organizations its records point to.
NON_COMPARTMENT_TYPES = ("Practitioner", "Organization")

#: "Now" as SQLAlchemy evaluates it each time a statement runs, so that a rule built once (see _memo) stays
#: right: grants expire by the clock of the query, not of the rule.
NOW = bindparam("phr_access_now", type_=UTCDateTime(), callable_=utcnow)
#: Rules built per (principal, model): building one is ~1 ms of Python for the FHIR view (bench/micro.py),
#: more than the query it guards. Rules hold no time (NOW) and no state, so they can be shared.
_RULES: dict = {}
_RULES_MAX = 512


def _memo(key, build):
    try:
        return _RULES[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable principal (never expected): build each time
        return build()
    rule = build()
    if len(_RULES) >= _RULES_MAX:
        _RULES.clear()
    _RULES[key] = rule
    return rule


@dataclass(frozen=True)
class SmartContext:
    """What a SMART access token carries: its scopes and, for patient scopes, the patient."""

    scopes: Scopes
    patient_id: str | None = None
    client_id: str | None = None
    grant_id: str | None = None


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user, a back-end client acting for providers, the master key, or nobody."""

    user_id: str | None = None
    role: str | None = None
    master: bool = False
    #: Providers this principal acts for: the providers linked to the user, or the client's provider.
    provider_ids: frozenset[str] = field(default_factory=frozenset)
    client_id: str | None = None
    #: Set for SMART bearer tokens: the token narrows, never widens (scopes, patient context).
    smart: SmartContext | None = None

    @property
    def authenticated(self) -> bool:
        return self.master or self.user_id is not None or bool(self.provider_ids)

    @property
    def is_admin(self) -> bool:
        return self.master or self.role == "admin"

    @property
    def acl_principals(self) -> list[str]:
        out = ["*"]
        if self.user_id:
            out.append(self.user_id)
        if self.role:
            out.append(f"role:{self.role}")
        return out


ANONYMOUS = Principal()
MASTER = Principal(master=True)


def principal_for_user(session: Session, user: User, client_id: str | None = None) -> Principal:
    providers = session.scalars(
        select(Provider.object_id).where(Provider.user_id == user.object_id, Provider.deleted_at.is_(None))
    ).all()
    return Principal(user_id=user.object_id, role=user.role, provider_ids=frozenset(providers), client_id=client_id)


# ---- building blocks ----

#: session.info key: (user id, profiles that user owned, those of them not deleted) as the request learnt them
#: when it authenticated (the token lookup; gateway/caller_cache.py drops it when they change).
REQUEST_OWNERSHIP = "phr_owned_profiles"


def learn_ownership(session: Session, user_id: str | None, owned: frozenset[str], live: frozenset[str]) -> None:
    session.info[REQUEST_OWNERSHIP] = (user_id, owned, live)


def forget_ownership(session: Session) -> None:
    """A profile, account or provider was changed in this request, or a part of it rolled back: ask the
    database from now on."""
    session.info.pop(REQUEST_OWNERSHIP, None)


def learn_new_profile(session: Session, user_id: str, profile_id: str) -> None:
    """The caller just created this profile as its own (a FHIR Bundle's Patient before its records): its
    records need no policy query either. A new row changes nothing already known; a rollback forgets all."""
    known = session.info.get(REQUEST_OWNERSHIP)
    if known is None or known[0] != user_id:
        known = (user_id, frozenset(), frozenset())
    session.info[REQUEST_OWNERSHIP] = (user_id, known[1] | {profile_id}, known[2] | {profile_id})


def known_owner(session: Session, profile_id: str | None) -> str | None:
    """The user who owns this (not deleted) profile, when the request already knows it; None: ask the
    database. A patient writing to their own profile then needs no policy query at all."""
    known = session.info.get(REQUEST_OWNERSHIP)
    if known is not None and profile_id in known[2]:
        return known[0]
    return None


def owned_profiles(p: Principal):
    """Ids of the profiles the principal owns."""
    if not p.user_id:
        return select(Profile.object_id).where(false())
    return select(Profile.object_id).where(Profile.user_id == p.user_id, Profile.deleted_at.is_(None))


def grants_to(p: Principal) -> ColumnElement[bool]:
    """SharedAccess rows naming this principal: as grantee user, or as (acting for) the provider."""
    who = []
    if p.user_id:
        who.append(SharedAccess.grantee_id == p.user_id)
    if p.provider_ids:
        who.append(equals_any(SharedAccess.provider_id, p.provider_ids))
    return or_(*who) if who else false()


def equals_any(column, values) -> ColumnElement[bool]:
    """`column` is one of `values` (a principal's few ids), as fixed equality terms rather than an expanding
    IN: SQLAlchemy re-renders an expanding IN into the statement text on every execution."""
    return or_(*(column == v for v in sorted(values))) if values else false()


def active_grants(p: Principal, *, category: str | None = None, write: bool = False,
                  now: datetime | None = None) -> ColumnElement[bool]:
    """The SharedAccess rows that give this principal something right now."""
    now = now if now is not None else NOW
    if not (p.user_id or p.provider_ids):
        return false()
    conds = [
        grants_to(p),
        SharedAccess.deleted_at.is_(None),
        SharedAccess.revoked_at.is_(None),
        or_(SharedAccess.expires_at.is_(None), SharedAccess.expires_at > now),
    ]
    if category:
        conds.append(json_array_contains(SharedAccess.scope, category))
    if write:
        conds.append(SharedAccess.access_level == "write")
    return and_(*conds)


def granted_profiles(p: Principal, **kwargs):
    return select(SharedAccess.profile_id).where(active_grants(p, **kwargs))


def acl_allows(model: type[Record], p: Principal, right: str) -> ColumnElement[bool]:
    column = AclEntry.can_read if right == "read" else AclEntry.can_write
    return exists(
        select(AclEntry.object_id).where(
            AclEntry.class_name == model.__parse_class__,
            AclEntry.object_id == model.object_id,
            equals_any(AclEntry.principal, p.acl_principals),
            column.is_(True),
        )
    )


# ---- the policy ----

def read_filter(model: type[Record], p: Principal, now: datetime | None = None) -> ColumnElement[bool]:
    """Rows of `model` that `p` may read."""
    if now is None:
        return _memo(("read", model, p), lambda: _read_filter(model, p))
    return _read_filter(model, p, now)


def _read_filter(model: type[Record], p: Principal, now: datetime | None = None) -> ColumnElement[bool]:
    if p.master:
        return true()
    if model is User:
        return model.object_id == p.user_id if p.user_id else false()
    if model is UserSession:
        return model.user_id == p.user_id if p.user_id else false()
    if model is Provider:
        return true() if p.authenticated else acl_allows(model, p, "read")
    if model is AuditLog:
        if p.is_admin:
            return true()
        conds = [AuditLog.profile_id.in_(owned_profiles(p))]
        if p.user_id:
            conds.append(AuditLog.actor_id == p.user_id)
        return or_(*conds)
    if model is Profile:
        return or_(
            Profile.object_id.in_(owned_profiles(p)),
            Profile.object_id.in_(granted_profiles(p, now=now)),
            acl_allows(model, p, "read"),
        )
    if model is SharedAccess:
        conds = [SharedAccess.profile_id.in_(owned_profiles(p)), acl_allows(model, p, "read")]
        if p.user_id:
            conds.append(SharedAccess.grantee_id == p.user_id)
        if p.provider_ids:
            conds.append(equals_any(SharedAccess.provider_id, p.provider_ids))
        return or_(*conds)
    if issubclass(model, ProfileRecord):
        return or_(
            model.profile_id.in_(owned_profiles(p)),
            model.profile_id.in_(granted_profiles(p, category=model.__category__, now=now)),
            acl_allows(model, p, "read"),
        )
    return false()


def write_filter(model: type[Record], p: Principal, *, delete: bool = False,
                 now: datetime | None = None) -> ColumnElement[bool]:
    """Rows of `model` that `p` may update (or, with delete=True, delete)."""
    if p.master:
        return true()
    if model is User:
        return model.object_id == p.user_id if p.user_id else false()
    if model is UserSession:
        return model.user_id == p.user_id if (p.user_id and delete) else false()
    if model is AuditLog:
        return true() if p.is_admin else false()
    if model is Provider:
        conds = [acl_allows(model, p, "write")]
        if p.is_admin:
            conds.append(true())
        if p.user_id:
            conds.append(Provider.user_id == p.user_id)
        return or_(*conds)
    if model is Profile:
        return or_(Profile.object_id.in_(owned_profiles(p)), acl_allows(model, p, "write"))
    if model is SharedAccess:
        return or_(SharedAccess.profile_id.in_(owned_profiles(p)), acl_allows(model, p, "write"))
    if issubclass(model, ProfileRecord):
        conds = [model.profile_id.in_(owned_profiles(p)), acl_allows(model, p, "write")]
        if not delete:
            conds.append(model.profile_id.in_(granted_profiles(p, category=model.__category__, write=True, now=now)))
        return or_(*conds)
    return false()


def owns_profile(session: Session, p: Principal, profile_id: str) -> bool:
    if p.master:
        return True
    if p.user_id and known_owner(session, profile_id) == p.user_id:
        return True
    return session.scalar(select(owned_profiles(p).where(Profile.object_id == profile_id).exists())) or False


def check_create(session: Session, model: type[Record], p: Principal, values: dict) -> None:
    """Raise unless `p` may create a `model` row with these column values."""
    if p.master:
        return
    denied = Forbidden(f"Permission denied for action create on class {model.__parse_class__}.")
    if model in (User, UserSession, AuditLog):
        raise denied
    if model is Provider:
        if p.is_admin or (p.role == "provider" and values.get("user_id") == p.user_id):
            return
        raise denied
    if model is Profile:
        if values.get("user_id") != p.user_id:
            raise denied
        return
    if model is SharedAccess:
        if not owns_profile(session, p, values.get("profile_id")):
            raise denied
        return
    if issubclass(model, ProfileRecord):
        profile_id = values.get("profile_id")
        if p.user_id and known_owner(session, profile_id) == p.user_id:
            return
        may = session.scalar(select(or_(
            profile_id_in(owned_profiles(p), profile_id),
            profile_id_in(granted_profiles(p, category=model.__category__, write=True), profile_id),
        )))
        if not may:
            raise denied
        return
    raise denied


def profile_id_in(subquery, profile_id: str | None) -> ColumnElement[bool]:
    if profile_id is None:
        return false()
    return exists(subquery.where(subquery.selected_columns[0] == profile_id))


def may_set_acl(session: Session, model: type[Record], p: Principal, profile_id: str | None, row=None) -> bool:
    """Only an owner hands out ACL entries: a provider with a write grant must not grant itself more."""
    if p.is_admin:
        return True
    if model is Profile:
        return row is None or row.user_id == p.user_id
    if profile_id is not None:
        return owns_profile(session, p, profile_id)
    if model is Provider:
        return row is None or row.user_id == p.user_id
    return False


def default_acl(session: Session, model: type[Record], p: Principal, values: dict) -> dict:
    """Owner-only ACL for new objects: the profile's owner, not whoever created the row, so that a
    provider's write grant ending also ends the provider's access to what it wrote."""
    owner = None
    if model is Profile:
        owner = values.get("user_id")
    elif "profile_id" in values and values["profile_id"]:
        owner = known_owner(session, values["profile_id"]) or session.scalar(
            select(Profile.user_id).where(Profile.object_id == values["profile_id"]))
    elif model is Provider:
        owner = values.get("user_id")
    owner = owner or p.user_id
    return {owner: {"read": True, "write": True}} if owner else {}


def require_authenticated(p: Principal) -> None:
    if not p.authenticated:
        raise NotFound("Permission denied, user needs to be authenticated.")


def profile_owner_id(session: Session, profile_id: str | None) -> str | None:
    if not profile_id:
        return None
    return session.scalar(select(Profile.user_id).where(Profile.object_id == profile_id))


# ---- the same rules over the FHIR view (fhir_resource rows carry class, source id, profile, category) ----

def fhir_read_filter(p: Principal, F=None, now: datetime | None = None, letter: str = "r") -> ColumnElement[bool]:
    """fhir_resource rows (or rows of an alias F of it) `p` may read: the native rules above, applied to
    the row's source record, intersected with a SMART token's scopes (`letter`: r to read, s to search)."""
    from gateway.models import FhirResource

    F = F if F is not None else FhirResource
    if now is None and F is FhirResource:
        return _memo(("fhir", p, letter), lambda: _fhir_read_filter(p, F, None, letter))
    return _fhir_read_filter(p, F, now, letter)


def _fhir_read_filter(p: Principal, F, now: datetime | None, letter: str) -> ColumnElement[bool]:
    rule = _fhir_owner_rules(p, F, now)
    if p.smart is not None:
        rule = and_(rule, smart_filter(p.smart, F, letter))
    return rule


def smart_filter(ctx: SmartContext, F, letter: str) -> ColumnElement[bool]:
    """Rows a token's scopes reach for one interaction letter: the scope's type, the patient compartment
    for patient/ scopes, and v2 query constraints (`patient/Observation.rs?category=laboratory`)."""
    from gateway.fhir.search import Compiler, Criterion

    options = []
    for rule in ctx.scopes.rules:
        if letter not in rule.letters:
            continue
        conds = []
        if rule.resource_type != "*":
            conds.append(F.resource_type == rule.resource_type)
        if rule.level == "patient":
            outside = equals_any(F.resource_type, NON_COMPARTMENT_TYPES)
            conds.append(or_(F.profile_id == ctx.patient_id, outside) if ctx.patient_id else outside)
        if rule.constraints:
            if rule.resource_type == "*":
                continue  # a constraint needs a type to be meaningful; such a scope grants nothing
            compiler = Compiler(lambda R: true(), "")
            for name, value in rule.constraints:
                base, _, modifier = name.partition(":")
                conds.append(compiler.criterion(F, rule.resource_type, Criterion(base, modifier or None, [value])))
        options.append(and_(true(), *conds))
    return or_(*options) if options else false()


def smart_permits(p: Principal, resource_type: str, letter: str) -> bool:
    """May this principal's token do `letter` on `resource_type` at all? (403 when not.)"""
    return p.smart is None or p.smart.scopes.permits(resource_type, letter)


def smart_patient_allows(p: Principal, profile_id: str | None) -> bool:
    """For a write under patient/ scopes only: the record must be in the token's patient compartment."""
    if p.smart is None or p.smart.scopes.levels - {"patient"}:
        return True
    return profile_id is not None and profile_id == p.smart.patient_id


def _fhir_owner_rules(p: Principal, F, now: datetime | None) -> ColumnElement[bool]:
    """The native rules per class of source record, factored so that each subquery is written once: the
    statement stays under psycopg's 4 KB query-conversion cache and is cheap to key and to plan (issue 9).
    Branch by branch it is the same as: Provider (acl unless signed in); Profile rows without a category
    (owned, any grant of the profile, acl); rows with a category (owned, a grant of that category, acl);
    SharedAccess (the consent's profile owned, its grantee or provider, acl); AuditLog; Group."""
    from gateway.models.shared_access import SCOPES

    if p.master:
        return true()
    acl = exists(select(AclEntry.object_id).where(
        AclEntry.class_name == F.class_name, AclEntry.object_id == F.source_id,
        equals_any(AclEntry.principal, p.acl_principals), AclEntry.can_read.is_(True),
    ))
    owned = owned_profiles(p)
    # A profile's data: its Patient (class Profile, no category) and every row with a category (the blood
    # group Observation is a Profile row with category labs). The ACL reaches the same rows and Consents.
    profile_data = [F.class_name == "Profile", F.category.is_not(None)]
    acl_classes = [F.class_name == "SharedAccess"] + ([] if p.authenticated else [F.class_name == "Provider"])
    if p.user_id or p.provider_ids:
        # (profile, category) of every active grant: the one subquery for all categories of the scope.
        items = json_array_items(SharedAccess.scope).table_valued("value")
        # Only the DESIGN.md categories, as the per-category rules were: a scope item outside them (never
        # valid, codec.py) grants nothing. Literals, not parameters: the list is fixed.
        granted_pairs = select(SharedAccess.profile_id, items.c.value).select_from(SharedAccess) \
            .join(items, true()).where(active_grants(p, now=now),
                                       items.c.value.in_([literal_column(f"'{cat}'") for cat in SCOPES]))
        # A NULL category never equals an item, so this is only ever true for rows with a category.
        by_category = tuple_(F.profile_id, F.category).in_(granted_pairs)
    else:
        by_category = false()
    grantee_of = [SharedAccess.profile_id.in_(owned)]
    if p.user_id:
        grantee_of.append(SharedAccess.grantee_id == p.user_id)
    if p.provider_ids:
        grantee_of.append(equals_any(SharedAccess.provider_id, p.provider_ids))
    consent = exists(select(SharedAccess.object_id).where(SharedAccess.object_id == F.source_id, or_(*grantee_of)))
    # An AuditEvent's profile_id is its audit row's (FhirStore keeps them equal): the owner's trail needs no
    # look at audit_log; an actor's own actions do. Asking audit_log for both made PostgreSQL hash the
    # whole audit_log for a 1,000-entry $everything at 100k records (10 ms).
    audit_rules = [F.profile_id.in_(owned)]
    if p.user_id:
        audit_rules.append(exists(select(AuditLog.object_id).where(
            AuditLog.object_id == F.source_id, AuditLog.actor_id == p.user_id)))
    audit_event = true() if p.is_admin else or_(*audit_rules)
    # Order matters for speed only: PostgreSQL evaluates OR terms left to right, the hashed subqueries first
    # and the per-row ACL probe last.
    return or_(
        F.class_name == "Provider" if p.authenticated else false(),  # else only by the ACL (below)
        and_(or_(*profile_data), F.profile_id.in_(owned)),
        and_(F.class_name == "Profile", F.category.is_(None), F.profile_id.in_(granted_profiles(p, now=now))),
        by_category,
        and_(F.class_name == "SharedAccess", consent),
        and_(F.class_name == "AuditLog", audit_event),
        # A provider's Group lists who shares with it: only that provider (and the master key) sees it.
        and_(F.class_name == "Group", equals_any(F.source_id, p.provider_ids)),
        and_(or_(*profile_data, *acl_classes), acl),
    )


def contacts_hidden(session: Session, p: Principal, profile_ids: set[str] | list[str]) -> set[str]:
    """Profiles whose emergency contacts `p` may not see although it may see the Patient: a Patient
    resource carries its contacts (Patient.contact), which are the 'contacts' category of a grant."""
    ids = set(profile_ids)
    if p.user_id:  # the caller's own profiles, as the request knows them
        ids = {i for i in ids if known_owner(session, i) != p.user_id}
    if p.master or not ids:
        return set()
    allowed = set(session.scalars(select(Profile.object_id).where(
        Profile.object_id.in_(sorted(ids)),
        or_(Profile.object_id.in_(owned_profiles(p)), Profile.object_id.in_(granted_profiles(p, category="contacts"))),
    )))
    return ids - allowed
