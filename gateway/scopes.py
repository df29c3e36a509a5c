"""SMART scopes (App Launch 2.2, 'Scopes and Launch Context'): v1 `.read/.write/.*` and v2 `.cruds`
letters, wildcards, v2 query constraints, and the context scopes. Pure: parsing and checks only."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

LETTERS = "cruds"
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_RESOURCE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.([a-z*]+)(\?.*)?$")
CONTEXT_SCOPES = {"openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter",
                  "offline_access", "online_access"}


class ScopeError(ValueError):
    pass


@dataclass(frozen=True)
class ScopeRule:
    level: str  # patient | user | system
    resource_type: str  # a type or "*"
    letters: frozenset[str]
    #: v2 query constraints, e.g. (("category", "laboratory"),): only resources matching them.
    constraints: tuple[tuple[str, str], ...] = ()
    text: str = ""

    def covers(self, resource_type: str, letter: str) -> bool:
        return letter in self.letters and self.resource_type in ("*", resource_type)


@dataclass(frozen=True)
class Scopes:
    rules: tuple[ScopeRule, ...] = ()
    context: frozenset[str] = field(default_factory=frozenset)

    @property
    def text(self) -> str:
        return " ".join([r.text for r in self.rules] + sorted(self.context))

    def permits(self, resource_type: str, letter: str) -> bool:
        return any(r.covers(resource_type, letter) for r in self.rules)

    def rules_for(self, resource_type: str, letter: str) -> list[ScopeRule]:
        return [r for r in self.rules if r.covers(resource_type, letter)]

    @property
    def levels(self) -> set[str]:
        return {r.level for r in self.rules}

    def has(self, name: str) -> bool:
        return name in self.context


def parse_rule(text: str) -> ScopeRule:
    m = _RESOURCE.match(text)
    if not m:
        raise ScopeError(f"not a resource scope: {text}")
    level, rtype, perm, query = m.groups()
    if perm in _V1:
        if query:
            raise ScopeError(f"query constraints need v2 permissions: {text}")
        letters = _V1[perm]
    else:
        if not perm or any(c not in LETTERS for c in perm) or list(perm) != sorted(perm, key=LETTERS.index) \
                or len(set(perm)) != len(perm):
            raise ScopeError(f"permissions must be letters of 'cruds' in that order: {text}")
        letters = perm
    constraints = tuple(parse_qsl(query[1:], keep_blank_values=False)) if query else ()
    return ScopeRule(level, rtype, frozenset(letters), constraints, text)


def parse(text: str | None, *, strict: bool = False) -> Scopes:
    """Parse a space-separated scope string; duplicates are tolerated. Unknown scopes are dropped (or,
    strict, refused)."""
    rules: list[ScopeRule] = []
    context: set[str] = set()
    seen: set[str] = set()
    for item in (text or "").split():
        if item in seen:
            continue
        seen.add(item)
        if item in CONTEXT_SCOPES:
            context.add(item)
            continue
        try:
            rules.append(parse_rule(item))
        except ScopeError:
            if strict:
                raise
    return Scopes(tuple(rules), frozenset(context))


def narrow(requested: Scopes, allowed: Scopes) -> Scopes:
    """What of `requested` `allowed` covers (a client's registered scopes, or what a user ticked)."""
    rules = []
    for r in requested.rules:
        for a in allowed.rules:
            if a.level == r.level and a.resource_type in ("*", r.resource_type) and r.letters <= a.letters \
                    and (not a.constraints or set(a.constraints) <= set(r.constraints)):
                rules.append(r)
                break
    return Scopes(tuple(rules), requested.context & allowed.context)


def subset(text: str, of: str) -> bool:
    """Is every scope in `text` also in `of`? (refresh may only narrow)"""
    return set(text.split()) <= set(of.split())
