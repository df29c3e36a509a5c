"""The authorize endpoint with parameters OAuth does not allow (RFC 6749 appendix A: printable ASCII only):
a CR/LF in redirect_uri (header injection), a quote or a non-ASCII character, a control character in
state, scope or client_id. Always a 400 page, never a redirect and never a 500."""
from __future__ import annotations

import pytest

from tests.smart.conftest import REDIRECT

BAD = ["\r\nSet-Cookie: phr_signin=stolen", "\r\n", "\n", "\x00", '"', "ä", "\x7f"]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("bad", BAD)
def test_a_bad_redirect_uri_gets_a_page_not_a_redirect(smart, method, bad):
    app = smart.register()
    params, _ = smart.authorize_params(app, "launch/patient patient/*.read", redirect_uri=REDIRECT + bad)
    r = smart.start(params, method)
    assert r.status_code == 400 and r.mimetype == "text/html", r.get_data(as_text=True)[:300]
    assert "Location" not in r.headers and "stolen" not in str(r.headers)  # nothing injected


@pytest.mark.parametrize("name", ["state", "scope", "client_id", "aud", "code_challenge"])
@pytest.mark.parametrize("bad", ["\r\n", "\x00"])
def test_control_characters_in_any_parameter_get_a_page(smart, name, bad):
    app = smart.register()
    params, _ = smart.authorize_params(app, "launch/patient patient/*.read")
    params[name] += bad
    r = smart.start(params)
    assert r.status_code == 400 and r.mimetype == "text/html"
    assert "Location" not in r.headers

