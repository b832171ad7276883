"""The one rule for ids (customer, event, order, offer, decision), in paths and bodies alike.

An id is 1..128 characters with no leading or trailing whitespace and none of the
characters that make two ids look alike or break a log line, a CSV cell or a database
value: control characters (Cc: NUL, newlines, DEL, C1), invisible format characters (Cf:
U+200D ZERO WIDTH JOINER, U+FEFF, bidi overrides), lone surrogates (Cs) and the line and
paragraph separators. Private-use and not yet assigned code points are allowed: a
character added in a newer Unicode version than this Python knows must not make a
client's id invalid. Ids are normalised to NFC, so a precomposed and a decomposed "é" are
the same customer whichever form a client sends.

The OpenAPI schema states the rule as a regular expression built from the same categories
(`id_pattern`); a test checks that the two agree.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

MAX_ID_LENGTH = 128
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Unicode has characters of those categories only in these planes (a test checks it against
# this Python's Unicode database).
PLANES_WITH_REFUSED = (0, 1, 14)


def normalise_id(value: str) -> str:
    """`value` in NFC, or ValueError saying what is wrong with it."""
    for char in value:
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            raise ValueError(f"must contain only printable characters (U+{ord(char):04X} is not)")
    if not value or value.strip() != value:
        raise ValueError("must not be empty or start or end with whitespace")
    value = unicodedata.normalize("NFC", value)
    # NFC can lengthen a few characters (composition exclusions), so check again.
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"must be 1 to {MAX_ID_LENGTH} characters after NFC normalisation")
    return value


def _ranges(codes) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return ranges


def _class_items(codes) -> str:
    def item(code: int) -> str:
        # BMP as \uXXXX escapes (read alike by Python's re, ECMAScript and Rust's regex);
        # astral code points as themselves, which all three read as one character.
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)

    return "".join(
        item(low) if low == high else f"{item(low)}-{item(high)}" for low, high in _ranges(codes)
    )


@cache
def id_pattern() -> str:
    """The rule of `normalise_id` (before NFC) as a regular expression, for the schema.
    Lone surrogates are left out: no JSON Schema string can hold one (they are refused all
    the same when a JSON escape smuggles one in)."""
    refused, spaces = [], []
    for plane in PLANES_WITH_REFUSED:
        for code in range(plane << 16, (plane + 1) << 16):
            category = unicodedata.category(chr(code))
            if category in REFUSED_CATEGORIES and category != "Cs":
                refused.append(code)
            elif chr(code).isspace():
                spaces.append(code)
    inner, edge = _class_items(refused), _class_items(sorted(refused + spaces))
    # First and last character: neither refused nor whitespace; between them: not refused.
    return f"^[^{edge}]([^{inner}]*[^{edge}])?$"


def state_id_pattern(schema: dict[str, Any]) -> None:
    """json_schema_extra: built only when a schema is generated, not at start-up."""
    schema["pattern"] = id_pattern()


# A body field; route parameters wrap the same rule in Path() (see service.deps).
Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, strict=True),
    Field(json_schema_extra=state_id_pattern),
    AfterValidator(normalise_id),
]
