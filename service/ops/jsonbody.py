"""The one strict JSON parser of every request body, and the route class that installs it.

Stricter than `json.loads`: a key repeated in one object is refused (which of the two
values wins is otherwise an accident of the parser), and so are NaN, Infinity and
-Infinity, which are not JSON. Both are 400s naming the key or field. A number that is
valid JSON but overflows a double (1e400) parses as infinity and is refused by the
field's own validation (422, or one rejected event in an ingest batch), so one such event
does not cost its batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _NonFinite:
    """Stands in for NaN or Infinity until its place in the document is known."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return document


def parse_json(body: bytes) -> Any:
    """The document in `body`, or HTTPException(400) naming what is wrong."""
    non_finite: list[_NonFinite] = []

    def refuse(text: str) -> Any:
        non_finite.append(_NonFinite(text))
        return non_finite[-1]

    try:
        document = json.loads(
            body,
            object_pairs_hook=_object_without_duplicates,
            parse_constant=refuse,
        )
    except _DuplicateKey as duplicate:
        raise HTTPException(400, f"duplicate key {duplicate.key!r} in a JSON object") from None
    except (ValueError, RecursionError) as error:
        raise HTTPException(400, f"body is not valid JSON: {error}") from None
    if non_finite:
        field = _path_of(document, non_finite[0])
        raise HTTPException(
            400, f"{field}: {non_finite[0].text} is not valid JSON (numbers must be finite)"
        )
    return document


def _path_of(document: Any, target: _NonFinite) -> str:
    """Where `target` sits, as body.events.0.amount (iterative: documents nest deeply)."""
    stack = [(document, "body")]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if isinstance(node, dict):
            stack.extend((value, f"{path}.{key}") for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, f"{path}.{index}") for index, value in enumerate(node))
    return "body"


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """Routes whose JSON bodies go through `parse_json` (FastAPI's documented way to
    swap the request class: "Custom Request and APIRoute class")."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler
