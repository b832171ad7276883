"""`GET /dashboard` and its assets under /dashboard/static (the vendored Chart.js among them).

The page is static and holds no data: its script asks for an API key and reads the insights
API with it, so serving the page needs no key. Everything it loads comes from this service,
so it works where no CDN can be reached, under a policy that allows nothing else."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

from service.ops.security import Pages

PAGE_PATH = "/dashboard"
STATIC_PATH = "/dashboard/static"
HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"

# Scripts, styles and API calls from this origin only; no inline code, no form posts.
PAGES = Pages(
    paths=(PAGE_PATH,),
    assets_path=STATIC_PATH,
    policy=(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
)

router = APIRouter(include_in_schema=False)


@router.get(PAGE_PATH)
async def dashboard_page() -> FileResponse:
    return FileResponse(HERE / "page.html", media_type="text/html")


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="dashboard-static")
