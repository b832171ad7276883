"""The one rule for ids (customer, event, order, offer, decision), in paths and bodies alike.

An id is 1..128 characters of printable Unicode (no control, format, surrogate,
private-use or unassigned code points: NUL, newlines and U+200D ZERO WIDTH JOINER are
refused), with no leading or trailing whitespace, and is normalised to NFC so that a
precomposed and a decomposed "é" are the same customer whichever form a client sends.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

MAX_ID_LENGTH = 128
# Cc control, Cf format (zero-width joiners, BOM), Cs surrogate, Co private use, Cn unassigned.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def normalise_id(value: str) -> str:
    """`value` in NFC, or ValueError saying what is wrong with it."""
    for char in value:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise ValueError(f"must contain only printable characters (U+{ord(char):04X} is not)")
    if value.strip() != value:
        raise ValueError("must not start or end with whitespace")
    value = unicodedata.normalize("NFC", value)
    # NFC can lengthen a few characters (composition exclusions), so check again.
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        raise ValueError(f"must be 1 to {MAX_ID_LENGTH} characters after NFC normalisation")
    return value


# A body field; route parameters wrap the same rule in Path() (see service.deps).
Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, strict=True),
    AfterValidator(normalise_id),
]
