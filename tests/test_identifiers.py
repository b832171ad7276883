"""The id rule and the pattern the OpenAPI schema states for it agree, character by character."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.identifiers import (
    PLANES_WITH_REFUSED,
    REFUSED_CATEGORIES,
    id_pattern,
    normalise_id,
)


def accepted(value: str) -> bool:
    try:
        normalise_id(value)
    except ValueError:
        return False
    return True


def test_refused_and_space_characters_live_only_in_the_planes_scanned():
    planes = {
        code >> 16
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in REFUSED_CATEGORIES or chr(code).isspace()
    }
    assert planes <= set(PLANES_WITH_REFUSED)


@pytest.mark.parametrize("plane", range(17))
def test_pattern_and_rule_agree_on_every_character(plane):
    pattern = re.compile(id_pattern())
    for code in range(plane << 16, (plane + 1) << 16):
        char = chr(code)
        for value in (char, f"a{char}b", f"a{char}"):
            if unicodedata.category(char) == "Cs":  # no schema string holds one; refused
                assert not accepted(value)
            else:
                assert bool(pattern.fullmatch(value)) == accepted(value), (hex(code), value)


@given(st.text(st.characters(codec=None), max_size=40))
def test_pattern_and_rule_agree_on_strings(value):
    assert bool(re.fullmatch(id_pattern(), value)) == accepted(value)


@pytest.mark.parametrize(
    "value, stored",
    [
        ("e\u0301", "\u00e9"),  # decomposed é is stored precomposed
        ("\u00e9", "\u00e9"),
        ("a\ue000", "a\ue000"),  # private use: accepted
        ("a\U000e0fff", "a\U000e0fff"),  # unassigned today: accepted
        ("👨\u200d👩", None),  # a zero-width joiner is refused, even inside an emoji sequence
    ],
)
def test_normal_form(value, stored):
    if stored is None:
        with pytest.raises(ValueError, match="200D"):
            normalise_id(value)
    else:
        assert normalise_id(value) == stored
