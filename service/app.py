"""The FastAPI application: lifespan start-up, routers, error shapes."""

from __future__ import annotations

import asyncio
import gc
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from sqlalchemy.ext.asyncio import AsyncConnection

from service.access.service import KeyVerifier, RateLimiter, display_prefix, ensure_key
from service.audiences.router import router as audiences_router
from service.audit import service as audit
from service.audit.router import router as audit_router
from service.background import Background, open_pool
from service.changes.router import router as changes_router
from service.config import Settings, get_settings
from service.customers.router import router as customers_router
from service.dashboard import router as dashboard
from service.db import RequestPool, asyncpg_dsn, create_engine, resolve_database_url
from service.events.router import router as events_router
from service.events.schemas import EventBatch
from service.events.validation import EventRules
from service.features.router import router as features_router
from service.insights.router import router as insights_router
from service.modeling.registry import ensure_shipped
from service.offers.router import router as offers_router
from service.ops import docs, errors
from service.ops.deadlines import DeadlineMiddleware
from service.ops.limits import Limits, LimitsMiddleware
from service.ops.logs import configure_logging
from service.ops.middleware import RequestContextMiddleware
from service.ops.router import router as ops_router
from service.ops.security import Pages, SecurityHeadersMiddleware
from service.privacy.router import router as privacy_router
from service.scoring import freshness
from service.scoring.nbo import NboContext, OfferCache
from service.scoring.router import router as scoring_router
from service.scoring.store import ModelStore
from service.sources import consumers, dead_letters
from service.sources.router import router as sources_router
from service.sources.secrets import SecretCache
from service.sources.segment.router import router as segment_router
from service.sources.shopify.router import router as shopify_router
from service.sources.stripe.router import router as stripe_router
from service.webhooks import delivery as webhook_delivery
from service.webhooks.router import router as webhooks_router

log = logging.getLogger("scorer")

OPENAPI_URL = "/openapi.json"
# Answer headers a browser caller may read besides the CORS-safelisted ones.
EXPOSED_HEADERS = [
    "X-Request-Id",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
]


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings: Settings = app.state.settings
    url = resolve_database_url(settings)
    deadlines = dict(
        statement_seconds=settings.read_deadline_seconds,
        lock_seconds=settings.db_lock_timeout_seconds,
        connect_seconds=settings.db_connect_timeout_seconds,
        acquire_seconds=settings.db_acquire_timeout_seconds,
    )
    app.state.engine = create_engine(url, pool_size=2, **deadlines)
    # Request handlers use a plain asyncpg pool sized for the expected concurrency:
    # SQLAlchemy's async checkout costs more than the whole feature query.
    app.state.pool = await RequestPool.open(asyncpg_dsn(url), settings.db_pool_size, **deadlines)
    app.state.key_verifier = KeyVerifier()
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_second)
    app.state.event_rules = EventRules.from_settings(settings)
    app.state.database_gauges = [
        dead_letters.refresh_gauge,
        consumers.refresh_gauges,
        freshness.refresh_gauge,
    ]
    app.state.source_secrets = SecretCache()
    if settings.bootstrap_api_key:
        async with app.state.engine.begin() as conn:
            await ensure_admin_key(
                conn, settings.bootstrap_api_key, "bootstrap", audit.SYSTEM_ACTOR
            )
    app.state.nbo = NboContext(settings.nbo, OfferCache())
    app.state.models = ModelStore(settings.pcltv.tiers())
    connect = app.state.pool.acquire
    async with connect() as conn:
        await ensure_shipped(conn)
        await app.state.models.refresh(conn)
    poller = asyncio.create_task(app.state.models.poll(connect, settings.model_poll_seconds))
    # Pending webhook deliveries, whichever process will send them.
    app.state.database_gauges.append(webhook_delivery.refresh_gauge)
    background = None
    if settings.background_work:
        background = Background(await open_pool(asyncpg_dsn(url)), app.state.models, settings)
    freeze_startup_objects()
    log.info("started")
    yield
    poller.cancel()
    if background is not None:
        await background.stop()
    await app.state.pool.close()
    await app.state.engine.dispose()
    log.info("stopped")


async def ensure_admin_key(conn: AsyncConnection, key: str, name: str, actor: str) -> None:
    """A known admin key (the bootstrap key, the demo's), audited only when this call
    created or changed it: every worker's start ensures it again."""
    if await ensure_key(conn, key, name, ["admin"]):
        await audit.record_sa(
            conn, actor, "key.ensured", display_prefix(key), {"name": name, "scopes": ["admin"]}
        )


def freeze_startup_objects() -> None:
    """Move everything allocated at start-up (libraries, models) out of the collector's
    reach: full collections scanned ~230k such objects and paused requests ~100 ms."""
    gc.collect()
    gc.freeze()


def request_limits(settings: Settings) -> Limits:
    return Limits(
        max_headers=settings.max_headers,
        max_header_bytes=settings.max_header_bytes,
        body_read_seconds=settings.body_read_seconds,
        max_body_bytes_default=settings.max_body_bytes_default,
        route_body_bytes={
            "/v1/events": settings.max_body_bytes,
            "/v1/batch": settings.max_segment_batch_bytes,
            # Platforms send whole orders: a large one is more than the default cap.
            "/v1/sources/shopify/webhooks": settings.max_body_bytes,
            "/v1/sources/stripe/webhooks": settings.max_body_bytes,
        },
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app = FastAPI(
        title="Customer Scorer",
        version="1.0.0",
        description="Real-time customer features and scores (churn, segment, pCLTV, NBO).",
        lifespan=lifespan,
        # The documentation pages are our own (service/ops/docs.py): offline and switchable.
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_URL if settings.docs_enabled else None,
    )
    app.state.settings = settings
    errors.install(app)
    # Routers are matched in this order: the per-request read paths first.
    for router in (
        scoring_router,
        features_router,
        events_router,
        customers_router,
        privacy_router,
        offers_router,
        changes_router,
        audiences_router,
        insights_router,
        sources_router,
        segment_router,
        shopify_router,
        stripe_router,
        webhooks_router,
        audit_router,
        ops_router,
    ):
        app.include_router(router)
    app.add_middleware(
        DeadlineMiddleware,
        read_seconds=settings.read_deadline_seconds,
        write_seconds=settings.write_deadline_seconds,
        export_seconds=settings.export_deadline_seconds,
        max_in_flight=settings.max_requests_in_flight,
    )
    app.add_middleware(LimitsMiddleware, limits=request_limits(settings))
    app.add_middleware(RequestContextMiddleware)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-Id"],
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )
    app.add_middleware(
        SecurityHeadersMiddleware,
        pages=[
            Pages(
                docs.DOCS_PATHS,
                docs.ASSETS_PATH,
                docs.docs_content_security_policy(OPENAPI_URL, app.title),
            ),
            dashboard.PAGES,
        ],
    )
    if settings.docs_enabled:
        docs.install(app, OPENAPI_URL)
    dashboard.install(app)
    app.openapi = lambda: _openapi(app)
    return app


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema plus the event models the hand-parsed ingest body refers to."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        definitions = EventBatch.openapi_schema().get("$defs", {})
        schema.setdefault("components", {}).setdefault("schemas", {}).update(definitions)
        app.openapi_schema = schema
    return app.openapi_schema
