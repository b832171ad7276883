"""The error of every source's pure mapping, and the id rule applied before an id is used."""

from service.identifiers import normalise_id


class Unusable(ValueError):
    """The message cannot be mapped to events; the text names the field."""


def checked_id(value: str, name: str) -> str:
    """`value` under the service's id rule (it becomes a key before any event validation
    sees it), or Unusable naming `name`."""
    try:
        return normalise_id(value)
    except ValueError as error:
        raise Unusable(f"{name}: {error}") from None
