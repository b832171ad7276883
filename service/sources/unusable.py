"""The error of every source's pure mapping."""


class Unusable(ValueError):
    """The message cannot be mapped to events; the text names the field."""
