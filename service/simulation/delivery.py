"""The order events reach the file in: as an at-least-once pipeline delivers them.

Most events arrive when they occur. A share arrives days late (a batch job, an
offline device), and a share is re-sent verbatim a little later (a retry after
a lost acknowledgement), which is what the service's idempotency and late-event
handling exist for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.simulation.clock import DAY

LATE_DELAY_DAYS = (1.0, 10.0)
RETRY_DELAY_MEAN = 2 * 3600


@dataclass(frozen=True)
class Delivery:
    order: np.ndarray  # event indexes in file order; a duplicated event appears twice
    late: int
    duplicates: int


def deliver(
    occurred: np.ndarray,
    period: int,
    rng: np.random.Generator,
    *,
    late_rate: float,
    duplicate_rate: float,
) -> Delivery:
    n = len(occurred)
    arrival = occurred.astype(np.float64)
    # Only an event at least a day before the end can still arrive a day late
    # inside the file: nothing arrives after the end.
    late = (rng.random(n) < late_rate) & (occurred <= period - DAY)
    delays = rng.uniform(*LATE_DELAY_DAYS, int(late.sum())) * DAY
    arrival[late] = np.minimum(occurred[late] + delays, period)

    resent = np.flatnonzero(rng.random(n) < duplicate_rate)
    retry_delays = 1 + rng.exponential(RETRY_DELAY_MEAN, resent.size)
    resent_arrival = np.minimum(arrival[resent] + retry_delays, period)

    sources = np.concatenate([np.arange(n), resent])
    arrivals = np.concatenate([arrival, resent_arrival])
    # Stable: ties keep generation order, which is each customer's causal order
    # (session before views before the order) and puts an original before its copy.
    order = sources[np.argsort(arrivals, kind="stable")]
    return Delivery(order=order, late=int(late.sum()), duplicates=int(resent.size))
