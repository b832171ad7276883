"""The ground-truth CSV: what the process really was, and what it did after the period.

Order counts and money follow the service's own definitions (docs/features.md), so
the truth can be compared with features and scores directly: an order counts
unless it is fully refunded, and revenue is net of refunds. `observed_*` use
the refunds known at the end of the period, exactly what the features show as
of then. `future_*_{H}d` use each order's eventual refunds, however late: that
is the value the orders really brought, and it keeps a longer horizon from
ever showing less than a shorter one.

Columns: customer_id, first_seen_at, alive_at_end (0/1), lambda (purchases per
day while alive), p_dropout (per purchase, and at joining), mean_spend (the
customer's mean order in dollars), observed_orders, observed_revenue, then per
horizon H: future_orders_{H}d and future_spend_{H}d (orders placed in
(end, end + H days]) and churned_{H}d (1 when future_orders_{H}d is 0).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from service.simulation.clock import DAY, Clock
from service.simulation.ndjson import customer_id, money
from service.simulation.process import CustomerOutcome, FutureOrder, Traits


def header(horizons: Sequence[int]) -> list[str]:
    columns = [
        "customer_id", "first_seen_at", "alive_at_end", "lambda", "p_dropout", "mean_spend",
        "observed_orders", "observed_revenue",
    ]  # fmt: skip
    for h in horizons:
        columns += [f"future_orders_{h}d", f"future_spend_{h}d", f"churned_{h}d"]
    return columns


def horizon_outcome(orders: list[FutureOrder], until: float) -> tuple[int, int]:
    """Counted orders and net cents of the orders placed up to `until`."""
    count = cents = 0
    for order in orders:
        if order.at > until:
            break
        count += order.refund_cents < order.amount_cents
        cents += order.amount_cents - order.refund_cents
    return count, cents


def write_truth(
    path: Path,
    population: Sequence[Traits],
    outcomes: Sequence[CustomerOutcome],
    *,
    clock: Clock,
    period: int,
    horizons: Sequence[int],
) -> None:
    with path.open("w", encoding="ascii", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header(horizons))
        for index, (traits, outcome) in enumerate(zip(population, outcomes, strict=True)):
            row = [
                customer_id(index),
                clock.rfc3339(int(traits.signup)),
                int(outcome.alive_at_end),
                f"{traits.purchase_rate:.6f}",
                f"{traits.dropout:.6f}",
                f"{traits.mean_spend:.2f}",
                outcome.observed_orders,
                money(outcome.observed_revenue_cents),
            ]
            for h in horizons:
                orders, cents = horizon_outcome(outcome.future_orders, period + h * DAY)
                row += [orders, money(cents), int(orders == 0)]
            writer.writerow(row)
