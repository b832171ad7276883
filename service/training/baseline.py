"""The field's probabilistic baseline on our data: BG/NBD + Gamma-Gamma at a cutoff.

Fitted on the counted orders up to the cutoff (the same orders the features see) and
predicting the next H days. Customers without an order are outside the BG/NBD
population (it is conditioned on a first purchase), so the baseline predicts 0 for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date

import asyncpg
import numpy as np

from service.features.definitions import order_counted_sql, order_net_sql
from service.training import probabilistic as prob

UNIT_DAYS = 7.0

_ORDERS_SQL = f"""
SELECT customer_id, day, {order_net_sql("amount", "refunded")}::float8 AS net
FROM orders
WHERE customer_id = ANY($1::text[]) AND day <= $2::date
  AND {order_counted_sql("amount", "refunded")}
"""


@dataclass
class BaselineResult:
    predictions: np.ndarray
    parameters: dict


async def order_history(
    conn: asyncpg.Connection, customer_ids: Sequence[str], cutoff: date
) -> prob.RfmSummary:
    position = {customer_id: i for i, customer_id in enumerate(customer_ids)}
    rows = await conn.fetch(_ORDERS_SQL, list(customer_ids), cutoff)
    return prob.rfm_summary_from_arrays(
        np.fromiter((position[r["customer_id"]] for r in rows), dtype=np.int64, count=len(rows)),
        np.fromiter((r["day"].toordinal() for r in rows), dtype=np.int64, count=len(rows)),
        np.fromiter((r["net"] for r in rows), dtype=float, count=len(rows)),
        cutoff_day=cutoff.toordinal(),
        n_customers=len(customer_ids),
        unit_days=UNIT_DAYS,
    )


async def predict(
    conn: asyncpg.Connection, customer_ids: Sequence[str], cutoff: date, horizon_days: int
) -> BaselineResult:
    summary = await order_history(conn, customer_ids, cutoff)
    buyers = summary.has_orders
    bg = prob.fit_bgnbd(summary.frequency[buyers], summary.recency[buyers], summary.T[buyers])
    gg = prob.fit_gamma_gamma(summary.frequency[buyers], summary.monetary_value[buyers])
    predictions = np.zeros(len(customer_ids))
    predictions[buyers] = prob.predicted_clv(
        bg,
        gg,
        summary.frequency[buyers],
        summary.recency[buyers],
        summary.T[buyers],
        summary.monetary_value[buyers],
        horizon_periods=horizon_days / UNIT_DAYS,
        period_days=UNIT_DAYS,
    )
    return BaselineResult(predictions, {"bgnbd": asdict(bg), "gamma_gamma": asdict(gg)})
