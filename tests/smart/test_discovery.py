"""Discovery: .well-known/smart-configuration, the CapabilityStatement's security section (equal to it),
OpenID Connect discovery, the JWKS (kept across restarts, old keys kept after rotation), smart_style_url."""
from __future__ import annotations

from fhirclient.models.capabilitystatement import CapabilityStatement

from gateway.smart import keys
from tests.smart.conftest import BASE, FHIR

REQUIRED_CAPABILITIES = {
    "launch-standalone", "client-public", "client-confidential-symmetric", "client-confidential-asymmetric",
    "authorize-post", "sso-openid-connect", "context-standalone-patient", "context-banner", "context-style",
    "permission-offline", "permission-patient", "permission-user", "permission-v1", "permission-v2",
}


def test_smart_configuration(client):
    r = client.get("/fhir/.well-known/smart-configuration", headers={"Origin": "https://app.example.org"})
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    conf = r.json
    assert set(conf["grant_types_supported"]) >= {"authorization_code", "client_credentials", "refresh_token"}
    assert conf["code_challenge_methods_supported"] == ["S256"]
    assert REQUIRED_CAPABILITIES <= set(conf["capabilities"])
    assert {"client_secret_basic", "private_key_jwt"} <= set(conf["token_endpoint_auth_methods_supported"])
    assert set(conf["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    assert conf["response_types_supported"] == ["code"]
    for key in ("token_endpoint", "authorization_endpoint", "issuer", "jwks_uri", "introspection_endpoint",
                "revocation_endpoint", "management_endpoint", "registration_endpoint"):
        assert conf[key].startswith(BASE + "/"), key
    for key in ("token_endpoint", "authorization_endpoint", "jwks_uri", "introspection_endpoint",
                "revocation_endpoint"):
        path = conf[key][len(BASE):]
        method = client.get if key == "jwks_uri" else client.post
        assert method(path).status_code != 404, key
    assert "openid" in conf["scopes_supported"] and "launch/patient" in conf["scopes_supported"]
    preflight = client.options("/fhir/.well-known/smart-configuration")
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"


def test_capability_statement_security_matches_well_known(client):
    conf = client.get("/fhir/.well-known/smart-configuration").json
    r = client.get("/fhir/metadata")
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    statement = r.json
    CapabilityStatement(statement, strict=True)  # what the Python fhirclient parses
    security = statement["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    ext = next(e for e in security["extension"]
               if e["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris")
    uris = {e["url"]: e["valueUri"] for e in ext["extension"]}
    assert set(uris) == {"authorize", "token", "introspect", "revoke", "manage", "register"}
    assert uris["authorize"] == conf["authorization_endpoint"]
    assert uris["token"] == conf["token_endpoint"]
    assert uris["introspect"] == conf["introspection_endpoint"]
    assert uris["revoke"] == conf["revocation_endpoint"]
    assert uris["manage"] == conf["management_endpoint"]
    assert uris["register"] == conf["registration_endpoint"]


def test_openid_configuration_and_jwks(client):
    conf = client.get("/fhir/.well-known/smart-configuration").json
    issuer = conf["issuer"]
    oidc = client.get(issuer[len(BASE):] + "/.well-known/openid-configuration")
    assert oidc.status_code == 200 and oidc.mimetype == "application/json"
    assert oidc.json["issuer"] == issuer and oidc.json["jwks_uri"] == conf["jwks_uri"]
    assert "RS256" in oidc.json["id_token_signing_alg_values_supported"]
    jwks = client.get(conf["jwks_uri"][len(BASE):]).json
    assert any(k["kty"] == "RSA" for k in jwks["keys"])
    assert all(k.get("kid") for k in jwks["keys"])
    assert not any("d" in k for k in jwks["keys"]), "private parts must never be published"
    again = client.get(conf["jwks_uri"][len(BASE):]).json
    assert again == jwks, "the signing key is made once and kept"


def test_rotation_keeps_old_keys_published(client, db_session):
    first = client.get("/oauth/jwks").json["keys"]
    new = keys.rotate(db_session)
    db_session.commit()
    after = {k["kid"] for k in client.get("/oauth/jwks").json["keys"]}
    assert new.kid in after and {k["kid"] for k in first} <= after
    assert keys.signing_key(db_session)[0] == new.kid


def test_style_url_serves_json(client):
    r = client.get("/oauth/style")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.json["color_background"].startswith("#")


def test_fhir_base_in_discovery_is_ours(client):
    assert client.get("/fhir/metadata").json["implementation"]["url"] == FHIR
