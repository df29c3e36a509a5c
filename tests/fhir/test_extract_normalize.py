"""The string-search form of a value (gateway/fhir/extract.normalize): ASCII text takes a shortcut that must
give what the full Unicode rule gives."""
from __future__ import annotations

import string
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from gateway.fhir.extract import normalize


def unicode_rule(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()[:500]


@given(st.text(alphabet=string.printable, max_size=600))
def test_ascii_text_normalizes_as_the_unicode_rule_says(text):
    assert normalize(text) == unicode_rule(text)


@given(st.text(max_size=50))
def test_any_text_normalizes_as_the_unicode_rule_says(text):
    assert normalize(text) == unicode_rule(text)


def test_case_and_accents_are_ignored():
    assert normalize("  Müller-Lüdenscheidt ") == normalize("MULLER-LUDENSCHEIDT") == "muller-ludenscheidt"
    assert normalize("Straße") == "strasse"  # casefold, not lower
    assert normalize("ＡＢＣ") == "abc"  # compatibility forms
