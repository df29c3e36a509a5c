"""Shared fixtures for mapping tests."""

import pytest
from golden_cases import GOLDEN_CTX

from mappings import MappingContext


@pytest.fixture
def ctx() -> MappingContext:
    """The context the golden files were made with."""
    return GOLDEN_CTX
