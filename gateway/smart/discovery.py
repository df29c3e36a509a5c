"""What the server tells clients about itself: `.well-known/smart-configuration` (App Launch 2.2,
'Conformance'), the CapabilityStatement's rest.security (the `oauth-uris` extension, which the Python
`fhirclient` reads), OpenID Connect discovery, and the style JSON behind smart_style_url."""
from __future__ import annotations

from typing import Any

from gateway.smart import clients

CAPABILITIES = [
    "launch-standalone", "client-public", "client-confidential-symmetric", "client-confidential-asymmetric",
    "authorize-post", "sso-openid-connect", "context-standalone-patient", "context-banner", "context-style",
    "permission-offline", "permission-online", "permission-patient", "permission-user", "permission-v1",
    "permission-v2",
]
#: Each listed scope works (SMART.md: 'each listed scope must work').
SCOPES_SUPPORTED = [
    "openid", "fhirUser", "profile", "launch/patient", "offline_access", "online_access",
    "patient/*.rs", "patient/*.cruds", "patient/*.read", "patient/*.write", "patient/*.*",
    "user/*.rs", "user/*.cruds", "user/*.read", "user/*.write", "user/*.*",
    "system/*.rs", "system/*.read",
]
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def endpoints(base: str) -> dict[str, str]:
    oauth = f"{base}/oauth"
    return {"authorize": f"{oauth}/authorize", "token": f"{oauth}/token", "introspect": f"{oauth}/introspect",
            "revoke": f"{oauth}/revoke", "manage": f"{oauth}/manage", "register": f"{oauth}/register",
            "jwks": f"{oauth}/jwks", "style": f"{oauth}/style", "issuer": oauth}


def smart_configuration(base: str) -> dict[str, Any]:
    e = endpoints(base)
    return {
        "issuer": e["issuer"],
        "jwks_uri": e["jwks"],
        "authorization_endpoint": e["authorize"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "token_endpoint": e["token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": list(clients.ASSERTION_ALGORITHMS),
        "registration_endpoint": e["register"],
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "management_endpoint": e["manage"],
        "introspection_endpoint": e["introspect"],
        "revocation_endpoint": e["revoke"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": CAPABILITIES,
    }


def capability_security(base: str) -> dict[str, Any]:
    """CapabilityStatement.rest.security: SMART-on-FHIR with the same endpoints as the well-known file."""
    e = endpoints(base)
    return {
        "cors": True,
        "service": [{
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}],
            "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
        }],
        "extension": [{
            "url": OAUTH_URIS,
            "extension": [{"url": name, "valueUri": e[name]}
                          for name in ("authorize", "token", "introspect", "revoke", "manage", "register")],
        }],
        "description": "SMART App Launch 2.2 and SMART Backend Services; see .well-known/smart-configuration",
    }


def openid_configuration(base: str) -> dict[str, Any]:
    e = endpoints(base)
    return {
        "issuer": e["issuer"],
        "authorization_endpoint": e["authorize"],
        "token_endpoint": e["token"],
        "jwks_uri": e["jwks"],
        "registration_endpoint": e["register"],
        "introspection_endpoint": e["introspect"],
        "revocation_endpoint": e["revoke"],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "fhirUser", "profile", "launch/patient", "offline_access", "online_access"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": list(clients.ASSERTION_ALGORITHMS),
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser",
                             "preferred_username"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
    }


#: App Launch 2.2 'Styling': the look of our pages, for apps that want to match it.
STYLE = {
    "color_background": "#f6f8fb",
    "color_error": "#b42318",
    "color_highlight": "#0b6e4f",
    "color_modal_backdrop": "#1d2939",
    "color_success": "#027a48",
    "color_text": "#1d2939",
    "dim_border_radius": "10px",
    "dim_font_size": "16px",
    "dim_spacing_size": "20px",
    "font_family_body": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    "font_family_heading": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
}
