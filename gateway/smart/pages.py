"""The state behind the authorize pages, kept in Flask's signed session cookie (SECRET_KEY): who signed in
and when, the CSRF token of the forms, and the authorize requests waiting for a decision. Also the words
the consent page uses for each scope."""
from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from flask import session as cookie

from gateway import scopes as smart_scopes

SIGN_IN_LIFETIME = 30 * 60
#: Authorize requests waiting at once in one browser (the cookie holds at most ~4 kB).
MAX_PENDING = 3


# ---- CSRF ----

def csrf_token() -> str:
    token = cookie.get("csrf")
    if not token:
        token = cookie["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(sent: str | None) -> bool:
    expected = cookie.get("csrf")
    return bool(expected and sent) and hmac.compare_digest(expected, sent)


# ---- who is signed in ----

def sign_in(user_id: str) -> None:
    # A new CSRF token at sign-in, so a token seen before cannot be replayed against the new session.
    cookie["uid"] = user_id
    cookie["auth_time"] = int(time.time())
    cookie["csrf"] = secrets.token_urlsafe(32)


def sign_out() -> None:
    for key in ("uid", "auth_time", "pending"):
        cookie.pop(key, None)


def signed_in_user_id() -> str | None:
    uid, at = cookie.get("uid"), cookie.get("auth_time")
    if not uid or not isinstance(at, int) or time.time() - at > SIGN_IN_LIFETIME:
        return None
    return uid


def auth_time() -> int | None:
    return cookie.get("auth_time")


# ---- authorize requests waiting for the person ----

def remember(params: dict[str, str]) -> str:
    rid = secrets.token_urlsafe(12)
    pending = dict(cookie.get("pending") or {})
    pending[rid] = params
    cookie["pending"] = dict(list(pending.items())[-MAX_PENDING:])
    return rid


def pending(rid: str) -> dict[str, str] | None:
    return (cookie.get("pending") or {}).get(rid)


def forget(rid: str) -> None:
    items = dict(cookie.get("pending") or {})
    items.pop(rid, None)
    cookie["pending"] = items


# ---- the consent page's words ----

#: Plain-language names of the record types (DESIGN.md 'PHR -> FHIR R4').
TYPE_NAMES = {
    "Patient": "your profile (name, birth date, contacts)",
    "AllergyIntolerance": "allergies",
    "Immunization": "vaccinations",
    "MedicationStatement": "medications",
    "Observation": "lab results and measurements",
    "DocumentReference": "medical documents",
    "Binary": "document files",
    "Consent": "who you share your record with",
    "AuditEvent": "the access log of your record",
    "RelatedPerson": "emergency contacts",
    "Practitioner": "your care providers",
    "Organization": "care organizations",
    "Group": "groups of patients",
    "*": "everything in the record",
}
VERBS = {"r": "see", "s": "search", "c": "add", "u": "change", "d": "delete"}
CONTEXT_WORDS = {
    "openid": "Confirm who you are when you sign in",
    "fhirUser": "Know which person in the record you are",
    "profile": "See your username",
    "offline_access": "Keep access after you close the app, until you revoke it",
    "online_access": "Stay connected while you use the app",
    "launch/patient": "Know which record you chose",
    "launch": "Open with the record you chose",
}
#: Scopes shown but not offered as a choice: they follow from choosing a record.
IMPLIED = {"launch", "launch/patient"}


@dataclass(frozen=True)
class ScopeLine:
    scope: str
    text: str
    detail: str
    sensitive: bool


def describe(scope: str) -> ScopeLine:
    if scope in CONTEXT_WORDS:
        return ScopeLine(scope, CONTEXT_WORDS[scope], "", scope == "offline_access")
    try:
        rule = smart_scopes.parse_rule(scope)
    except smart_scopes.ScopeError:
        return ScopeLine(scope, scope, "", False)
    verbs = [VERBS[c] for c in "rscud" if c in rule.letters]
    if "see" in verbs and "search" in verbs:
        verbs.remove("search")
    what = TYPE_NAMES.get(rule.resource_type, rule.resource_type)
    whose = {"patient": "in the record you choose", "user": "that you can access",
             "system": "that this system may access"}[rule.level]
    text = f"{_join(verbs).capitalize()} {what} {whose}"
    detail = ", ".join(f"only where {k} is {v}" for k, v in rule.constraints)
    return ScopeLine(scope, text, detail, bool(rule.letters & {"c", "u", "d"}))


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def consent_lines(scope: str) -> list[ScopeLine]:
    seen: list[str] = []
    for item in scope.split():
        if item not in seen and item not in IMPLIED:
            seen.append(item)
    return [describe(s) for s in seen]


def needs_patient(scope: str) -> bool:
    parsed = smart_scopes.parse(scope)
    return "patient" in parsed.levels or parsed.has("launch/patient")


def granted_scope(requested: str, ticked: list[str], patient_chosen: bool) -> str:
    """What the person approved: the ticked scopes among those asked (never more), plus the context
    scopes that follow from choosing a record."""
    ticked_set = set(ticked)
    out: list[str] = []
    for item in requested.split():
        if item in out:
            continue
        if item in IMPLIED:
            if patient_chosen:
                out.append(item)
        elif item in ticked_set:
            out.append(item)
    return " ".join(out)


def public_params(values: Any) -> dict[str, str]:
    """The authorize parameters worth keeping (one value each: duplicates were refused already)."""
    keep = ("response_type", "client_id", "redirect_uri", "scope", "state", "aud", "code_challenge",
            "code_challenge_method", "nonce", "launch", "prompt")
    return {k: values.get(k) for k in keep if values.get(k) is not None}
