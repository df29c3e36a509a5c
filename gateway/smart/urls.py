"""Absolute URLs of the authorization server, all derived from the public base (PHR_BASE_URL), so that
discovery, the CapabilityStatement, `aud` checks and assertion audiences agree everywhere."""
from __future__ import annotations

from flask import current_app


def base() -> str:
    return current_app.config["BASE_URL"]


def fhir_base() -> str:
    return base() + "/fhir"


def issuer() -> str:
    """The OpenID issuer: `{issuer}/.well-known/openid-configuration` is served."""
    return base() + "/oauth"


def endpoint(name: str) -> str:
    """authorize, token, introspect, revoke, manage, register, jwks, style."""
    return f"{base()}/oauth/{name}"


def same_base(aud: str | None) -> bool:
    """Is `aud` our FHIR base? (a trailing slash is the same base)"""
    return isinstance(aud, str) and aud.rstrip("/") == fhir_base()
