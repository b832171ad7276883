"""Alerts: thresholds on insight metrics, evaluated by the background work. A crossing
(the metric past its threshold where, at the last evaluation, it was not) records one
`alert.triggered` change, which the change feed serves and the webhooks deliver; the alert
fires again only after the metric has come back within its threshold.

Evaluators lock every alert row for the evaluation, so concurrent processes never both fire
one crossing, and the change is recorded in the same transaction as the new state."""

from __future__ import annotations

import secrets
from datetime import date

import asyncpg

from service.audit import service as audit
from service.changes.service import ALERT_TRIGGERED, NewChange, record
from service.insights.metrics import readings
from service.insights.schemas import AlertCreate

_COLUMNS = (
    "alert_id, name, metric, subject, operator, threshold, created_at, firing, last_value, "
    "evaluated_at, triggered_at, triggered_count"
)


def new_alert_id() -> str:
    return "alr_" + secrets.token_hex(8)


def past(operator: str, value: float | None, threshold: float) -> bool:
    if value is None:
        return False
    return value > threshold if operator == "above" else value < threshold


_UPDATE = """
UPDATE insight_alerts SET firing = $2, last_value = $3, evaluated_at = clock_timestamp(),
       triggered_at = CASE WHEN $4 THEN clock_timestamp() ELSE triggered_at END,
       triggered_count = triggered_count + $4::int
WHERE alert_id = $1
"""


async def evaluate(conn: asyncpg.Connection, today: date) -> list[str]:
    """Evaluate every alert; the ids of those that fired."""
    async with conn.transaction():
        alerts = await conn.fetch(
            f"SELECT {_COLUMNS} FROM insight_alerts ORDER BY alert_id FOR UPDATE"
        )
        if not alerts:
            return []
        current = await readings(conn, today)
        fired: list[NewChange] = []
        for alert in alerts:
            value = current.value(alert["metric"], alert["subject"])
            # A metric that cannot be read now (no snapshot yet) keeps the alert's state.
            firing = (
                alert["firing"]
                if value is None
                else past(alert["operator"], value, alert["threshold"])
            )
            crossed = firing and not alert["firing"]
            await conn.execute(_UPDATE, alert["alert_id"], firing, value, crossed)
            if crossed:
                fired.append(NewChange(ALERT_TRIGGERED, None, None, _fired(alert, value)))
        await record(conn, fired)
    return [change.after["alert_id"] for change in fired]


def _fired(alert: asyncpg.Record, value: float) -> dict:
    return {
        "alert_id": alert["alert_id"],
        "name": alert["name"],
        "metric": alert["metric"],
        "subject": alert["subject"],
        "operator": alert["operator"],
        "threshold": alert["threshold"],
        "value": value,
    }


async def create(conn: asyncpg.Connection, fields: AlertCreate, actor: str) -> asyncpg.Record:
    async with conn.transaction():
        row = await conn.fetchrow(
            f"INSERT INTO insight_alerts (alert_id, name, metric, subject, operator, threshold) "
            f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
            new_alert_id(),
            fields.name,
            fields.metric,
            fields.subject,
            fields.operator,
            fields.threshold,
        )
        await audit.record(conn, actor, "alert.created", row["alert_id"], fields.model_dump())
    return row


async def listing(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {_COLUMNS} FROM insight_alerts ORDER BY created_at, alert_id")


async def find(conn: asyncpg.Connection, alert_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM insight_alerts WHERE alert_id = $1", alert_id
    )


async def delete(conn: asyncpg.Connection, alert_id: str, actor: str) -> asyncpg.Record | None:
    """The deleted alert; None when there was none."""
    async with conn.transaction():
        row = await conn.fetchrow(
            f"DELETE FROM insight_alerts WHERE alert_id = $1 RETURNING {_COLUMNS}", alert_id
        )
        if row is not None:
            await audit.record(conn, actor, "alert.deleted", alert_id, {"name": row["name"]})
    return row
