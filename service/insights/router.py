"""`/v1/insights`: the numbers the dashboard shows, as JSON for BI tools."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request

from service.deps import Admin, Pool, ScoresReader
from service.insights import alerts, refresh, snapshots
from service.insights.health import model_health
from service.insights.movements import movements
from service.insights.schemas import (
    Alert,
    AlertCreate,
    AlertList,
    Cohorts,
    Distribution,
    Equity,
    EquityGroup,
    GroupCount,
    ModelHealth,
    MovementCell,
    Movements,
    Offers,
    SnapshotsTaken,
    TrendDay,
    Trends,
)
from service.insights.service import distribution, equity
from service.offers.report import offers_report
from service.ops.responses import error_responses

router = APIRouter(prefix="/v1/insights", tags=["insights"])

Grouping = Literal["tier", "segment", "churn_band"]


@router.get(
    "/equity",
    response_model=Equity,
    summary="Customer equity (predicted and historic value), by group",
    responses=error_responses(),
)
async def get_equity(
    pool: Pool, _key: ScoresReader, by: Annotated[Grouping, Query()] = "tier"
) -> Equity:
    # ROLLUP's grand-total row comes first, and exists even when no customer is scored.
    total, *groups = await pool.read(lambda conn: equity(conn, by))
    return Equity(
        by=by,
        total=EquityGroup(**{**vars(total), "name": "total"}),
        groups=[EquityGroup(**vars(row)) for row in groups],
    )


def _shares(payload: dict) -> dict:
    """A distribution payload as the wire shows it: each group with its share."""
    total = payload["customers"]
    return {
        "customers": total,
        **{
            name: [
                GroupCount(**group, share=group["customers"] / total if total else 0.0)
                for group in payload[name]
            ]
            for name in ("segments", "tiers", "churn_bands")
        },
    }


@router.get(
    "/distribution",
    response_model=Distribution,
    summary="Customers by segment, value tier and churn band, now",
    responses=error_responses(),
)
async def get_distribution(pool: Pool, _key: ScoresReader) -> Distribution:
    return Distribution(**_shares(await pool.read(distribution)))


@router.get(
    "/trends",
    response_model=Trends,
    summary="The distribution and equity of each day, from the daily snapshots",
    responses=error_responses(),
)
async def get_trends(
    request: Request,
    pool: Pool,
    _key: ScoresReader,
    days: Annotated[int, Query(ge=1, le=3660, description="The last N days, today included.")] = 90,
) -> Trends:
    today = datetime.now(UTC).astimezone(request.app.state.settings.zone).date()
    first = today - timedelta(days=days - 1)
    taken = await pool.read(lambda conn: snapshots.since(conn, "distribution", first))
    return Trends(
        days=[
            TrendDay(
                day=s.day,
                computed_at=s.computed_at,
                pcltv=s.payload["pcltv"],
                historic=s.payload["historic"],
                **_shares(s.payload),
            )
            for s in taken
        ]
    )


@router.get(
    "/movements",
    response_model=Movements,
    summary="Customers who moved between segments, tiers or churn bands, from → to",
    responses=error_responses(),
)
async def get_movements(
    request: Request,
    pool: Pool,
    _key: ScoresReader,
    by: Annotated[Grouping, Query()] = "segment",
    days: Annotated[
        int,
        Query(
            ge=1,
            le=3660,
            description="The last N days; past the change feed's retention "
            "(SCORER_CHANGES_RETENTION_DAYS), as many as it keeps.",
        ),
    ] = 7,
) -> Movements:
    end = datetime.now(UTC)
    retention = request.app.state.settings.changes.retention_days
    # The feed keeps `retention` days: an older start would count partial movements.
    start = end - timedelta(days=min(days, retention))
    moved = await pool.read(lambda conn: movements(conn, by, start, end))
    return Movements(
        by=by,
        from_=start,
        to=end,
        shortened=days > retention,
        moved=sum(m.customers for m in moved),
        cells=[MovementCell(from_=m.from_name, to=m.to_name, customers=m.customers) for m in moved],
    )


@router.get(
    "/cohorts",
    response_model=Cohorts,
    summary="Cohort retention and revenue by acquisition month, from the latest snapshot",
    responses=error_responses(),
)
async def get_cohorts(
    pool: Pool,
    _key: ScoresReader,
    months: Annotated[int, Query(ge=1, le=240, description="The latest N cohorts.")] = 12,
) -> Cohorts:
    taken = await pool.read(lambda conn: snapshots.latest(conn, "cohorts"))
    if taken is None:
        return Cohorts(computed_at=None, cohorts=[])
    return Cohorts(computed_at=taken.computed_at, cohorts=taken.payload["cohorts"][-months:])


@router.get(
    "/offers",
    response_model=Offers,
    summary="Offer acceptance, and uplift of treatment over control, with 95% intervals",
    responses=error_responses(),
)
async def get_offers(
    pool: Pool,
    _key: ScoresReader,
    days: Annotated[int, Query(ge=1, le=3660, description="Decisions of the last N days.")] = 30,
    outcome_days: Annotated[
        int, Query(ge=1, le=365, description="Orders and revenue counted N days after each.")
    ] = 30,
) -> Offers:
    end = datetime.now(UTC)
    start = end - timedelta(days=days)
    report = await pool.read(lambda conn: offers_report(conn, start, end, outcome_days))
    return Offers(
        from_=start,
        to=end,
        outcome_days=outcome_days,
        treatment=report["groups"]["treatment"],
        control=report["groups"]["control"],
        offers=[
            {**row, "offer_id": offer, "acceptance_ci95": _interval(row["acceptance_ci95"])}
            for offer, row in report["offers"].items()
        ],
        uplift=None
        if report["uplift"] is None
        else {
            name: {**u, "ci95": _interval((u["ci95_low"], u["ci95_high"]))}
            for name, u in report["uplift"].items()
        },
    )


def _interval(bounds: tuple[float, float]) -> dict:
    return {"low": bounds[0], "high": bounds[1]}


@router.post(
    "/snapshots",
    response_model=SnapshotsTaken,
    summary="Take today's insight snapshots now (every kind)",
    responses=error_responses(extra={409: "Another process is refreshing them right now."}),
)
async def take_snapshots(request: Request, pool: Pool, admin: Admin) -> SnapshotsTaken:
    settings = request.app.state.settings
    context = refresh.SnapshotContext(
        datetime.now(UTC).astimezone(settings.zone).date(), settings.zone, request.app.state.models
    )
    async with pool.acquire() as conn:
        kinds = await refresh.take_now(conn, context, admin.name)
    if kinds is None:
        raise HTTPException(409, "another process is refreshing the snapshots; retry shortly")
    return SnapshotsTaken(day=context.day, kinds=kinds)


AlertId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
_UNKNOWN_ALERT = {404: "No such alert."}


@router.get("/alerts", response_model=AlertList, summary="List alerts", responses=error_responses())
async def list_alerts(pool: Pool, _key: ScoresReader) -> AlertList:
    return AlertList(data=[dict(row) for row in await pool.read(alerts.listing)])


@router.post(
    "/alerts",
    response_model=Alert,
    summary="Define an alert on an insight metric",
    responses=error_responses(body=True),
)
async def create_alert(body: AlertCreate, pool: Pool, admin: Admin) -> Alert:
    async with pool.acquire() as conn:
        row = await alerts.create(conn, body, admin.name)
    return Alert(**dict(row))


@router.get(
    "/alerts/{alert_id}",
    response_model=Alert,
    summary="Read an alert and its state",
    responses=error_responses(extra=_UNKNOWN_ALERT),
)
async def get_alert(alert_id: AlertId, pool: Pool, _key: ScoresReader) -> Alert:
    return _found(alert_id, await pool.read(lambda conn: alerts.find(conn, alert_id)))


@router.delete(
    "/alerts/{alert_id}",
    response_model=Alert,
    summary="Delete an alert (returns the deleted alert)",
    responses=error_responses(extra=_UNKNOWN_ALERT),
)
async def delete_alert(alert_id: AlertId, pool: Pool, admin: Admin) -> Alert:
    async with pool.acquire() as conn:
        return _found(alert_id, await alerts.delete(conn, alert_id, admin.name))


def _found(alert_id: str, row) -> Alert:
    if row is None:
        raise HTTPException(404, f"no alert {alert_id}")
    return Alert(**dict(row))


@router.get(
    "/model-health",
    response_model=ModelHealth,
    summary="Active models, calibration on the last complete horizon, drift from training",
    responses=error_responses(),
)
async def get_model_health(request: Request, pool: Pool, _key: ScoresReader) -> ModelHealth:
    threshold = request.app.state.settings.drift_psi_threshold
    return ModelHealth(**await pool.read(lambda conn: model_health(conn, threshold)))
