"""`/docs` (Swagger UI) and `/redoc`, served with their assets from this service itself,
so the pages work without reaching any CDN (the assets ship in the fastapi-offline wheel)."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS_PATH = "/docs/assets"
ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_PATHS = ("/docs", "/redoc")


def swagger_page(openapi_url: str, title: str) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{title} - Swagger UI",
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
        oauth2_redirect_url=None,
    )


def redoc_page(openapi_url: str, title: str) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=openapi_url,
        title=f"{title} - ReDoc",
        redoc_js_url=f"{ASSETS_PATH}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS_PATH}/favicon.png",
        with_google_fonts=False,
    )


def inline_script_hashes(page: HTMLResponse) -> list[str]:
    """CSP sources allowing exactly the page's inline scripts (Swagger UI's start-up)."""
    scripts = re.findall(rb"<script>(.*?)</script>", page.body, re.DOTALL)
    return [f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in scripts]


def docs_content_security_policy(openapi_url: str, title: str) -> str:
    """Scripts only from here (plus Swagger UI's own inline start-up, by hash); the UIs set
    inline styles and ReDoc runs a worker from a blob, so those are allowed too."""
    scripts = " ".join(["'self'", *inline_script_hashes(swagger_page(openapi_url, title))])
    return (
        f"default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; worker-src blob:; frame-ancestors 'none'; base-uri 'none'"
    )


def install(app: FastAPI, openapi_url: str) -> None:
    """Serve the two documentation pages and their assets (none of it in the OpenAPI)."""

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return swagger_page(openapi_url, app.title)

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return redoc_page(openapi_url, app.title)

    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
