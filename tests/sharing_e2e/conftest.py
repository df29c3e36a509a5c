"""The real server (tests/e2e/conftest.py's live_server) and headless Chromium (tests/smart_e2e's setup)."""
from tests.e2e.conftest import live_server  # noqa: F401  (the fixture)
from tests.smart_e2e.test_browser import browser  # noqa: F401  (the fixture)
