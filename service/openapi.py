"""Writes the OpenAPI document of the app (checked for drift by the test suite)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from service.app import create_app
from service.config import Settings

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def render() -> str:
    app = create_app(Settings(database_url="postgresql://unused/unused"))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    OPENAPI_PATH.write_text(render())
    print(f"wrote {OPENAPI_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
