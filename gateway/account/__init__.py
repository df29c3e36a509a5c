"""The signed-in patient's own pages under /account: who has access to each of her profiles, sharing with
a provider and ending it, the access log of each profile, and "download my record" (export.zip).

Sign-in is the SMART pages' (gateway/smart/pages.py: the same signed cookie, CSRF token and form);
every change goes through the services, so audit, versions, the FHIR view and events all follow."""
from gateway.account.views import account_bp
from gateway.account import export  # noqa: F401  (registers GET /account/export.zip on account_bp)

__all__ = ["account_bp"]
