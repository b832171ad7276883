"""`scorer report offers`: acceptance by offer and uplift of treatment over control.

Uplift compares customers' counted orders and net revenue in the `days` after each
decision, treatment vs control (the control group is a fixed random share of customers
that gets no offer), with a normal-approximation 95% interval on the difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from service.features.definitions import order_counted_sql, order_net_sql

_OUTCOMES = f"""
WITH decided AS (
  SELECT d.customer_id, d.decision_id, d.decided_at, d.offer_id, d."group",
         d.accepted_at IS NOT NULL AS accepted
  FROM offer_decisions d
  WHERE d.decided_at >= $1 AND d.decided_at < $2 AND d."group" IN ('treatment', 'control')
)
SELECT d."group", d.offer_id, d.accepted,
  (SELECT count(*) FILTER (WHERE {order_counted_sql("o.amount", "o.refunded")})
     FROM orders o WHERE o.customer_id = d.customer_id
       AND o.occurred_at > d.decided_at
       AND o.occurred_at <= d.decided_at + make_interval(days => $3)) AS orders,
  (SELECT coalesce(sum({order_net_sql("o.amount", "o.refunded")}), 0)::float8
     FROM orders o WHERE o.customer_id = d.customer_id
       AND o.occurred_at > d.decided_at
       AND o.occurred_at <= d.decided_at + make_interval(days => $3)) AS revenue
FROM decided d
"""


@dataclass
class GroupOutcome:
    accepted: int = 0
    orders: list[float] = field(default_factory=list)
    revenue: list[float] = field(default_factory=list)

    @property
    def decisions(self) -> int:
        return len(self.orders)

    def add(self, accepted: bool, orders: float, revenue: float) -> None:
        self.accepted += int(accepted)
        self.orders.append(orders)
        self.revenue.append(revenue)


def mean_and_variance(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    variance = sum((v - mean) ** 2 for v in values) / max(n - 1, 1)
    return mean, variance


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a proportion: within [0, 1] and sane for few trials, where
    the normal approximation is neither."""
    share, spread = successes / trials, z * z / trials
    centre = share + spread / 2
    half = z * math.sqrt(share * (1 - share) / trials + spread / (4 * trials))
    return max((centre - half) / (1 + spread), 0.0), min((centre + half) / (1 + spread), 1.0)


def uplift(treatment: list[float], control: list[float]) -> dict[str, float]:
    """Difference of means with a normal-approximation 95% interval."""
    (mt, vt), (mc, vc) = mean_and_variance(treatment), mean_and_variance(control)
    error = math.sqrt(vt / len(treatment) + vc / len(control))
    difference = mt - mc
    return {
        "treatment_mean": mt,
        "control_mean": mc,
        "uplift": difference,
        "ci95_low": difference - 1.96 * error,
        "ci95_high": difference + 1.96 * error,
    }


async def offers_report(
    conn: asyncpg.Connection, start: datetime, end: datetime, days: int
) -> dict:
    groups: dict[str, GroupOutcome] = {"treatment": GroupOutcome(), "control": GroupOutcome()}
    by_offer: dict[str, GroupOutcome] = {}
    for row in await conn.fetch(_OUTCOMES, start, end, days):
        outcome = (row["accepted"], float(row["orders"]), float(row["revenue"]))
        groups[row["group"]].add(*outcome)
        if row["offer_id"] is not None:
            by_offer.setdefault(row["offer_id"], GroupOutcome()).add(*outcome)
    report: dict = {
        "window": {"from": start.isoformat(), "to": end.isoformat(), "outcome_days": days},
        "groups": {
            name: {"decisions": g.decisions, "accepted": g.accepted} for name, g in groups.items()
        },
        "offers": {
            offer: {
                "shown": g.decisions,
                "accepted": g.accepted,
                "acceptance_rate": g.accepted / g.decisions,
                "acceptance_ci95": wilson_interval(g.accepted, g.decisions),
            }
            for offer, g in sorted(by_offer.items())
        },
    }
    treatment, control = groups["treatment"], groups["control"]
    if treatment.decisions >= 2 and control.decisions >= 2:
        report["uplift"] = {
            "orders_per_decision": uplift(treatment.orders, control.orders),
            "revenue_per_decision": uplift(treatment.revenue, control.revenue),
        }
    else:
        report["uplift"] = None
    return report
