"""The README's settings table is the settings: same variables, same defaults."""

from __future__ import annotations

import re

from pydantic import BaseModel, TypeAdapter

from service.config import Settings
from tests.conftest import ROOT

UNSET = "unset"


def settings_by_variable() -> dict[str, tuple[object, object]]:
    """Environment variable -> (annotation, default) of every setting, sections flattened."""
    found = {}
    for name, field in Settings.model_fields.items():
        if isinstance(field.default, BaseModel):
            section = type(field.default)
            for sub, subfield in section.model_fields.items():
                variable = f"SCORER_{name}_{sub}".upper()
                found[variable] = (subfield.annotation, subfield.default)
        else:
            alias = field.validation_alias
            variable = alias.choices[0] if alias else f"SCORER_{name}".upper()
            found[variable] = (field.annotation, field.default)
    return found


def readme_settings() -> dict[str, str]:
    """Variable -> default text, from the README's `## Settings` table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    documented = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        variables = re.findall(r"`([A-Z_]+)`", cells[0])
        defaults = re.findall(r"`([^`]*)`", cells[1]) or [cells[1]]
        assert len(variables) == len(defaults), line
        documented.update(zip(variables, defaults, strict=True))
    return documented


def test_readme_lists_every_setting_and_nothing_else():
    assert sorted(readme_settings()) == sorted(settings_by_variable())


def test_readme_defaults_are_the_defaults():
    settings = settings_by_variable()
    for variable, text in readme_settings().items():
        annotation, default = settings[variable]
        if text == UNSET:
            assert default is None, variable
        else:
            assert TypeAdapter(annotation).validate_python(text) == default, variable
