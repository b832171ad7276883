"""The methods a path really supports, for the `Allow` header of 405 and OPTIONS answers.

Starlette's 405 names only the methods of the first route whose path matched, while a path
such as `/v1/offers/{offer_id}` is served by three routes (GET, PUT, DELETE)."""

from __future__ import annotations

import re
from functools import lru_cache

from fastapi.routing import iter_route_contexts
from starlette.requests import Request
from starlette.routing import compile_path


@lru_cache(maxsize=256)
def _path_regex(template: str) -> re.Pattern[str]:
    return compile_path(template)[0]


def allowed_methods(request: Request) -> list[str]:
    """Every method of every route serving the request's path, plus OPTIONS (answered on
    any existing path); empty when no route serves the path."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.methods and route.path and _path_regex(route.path).match(request.url.path):
            methods.update(route.methods)
    return sorted(methods | {"OPTIONS"}) if methods else []
