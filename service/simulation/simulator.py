"""Runs a whole simulation: population, per-customer process, delivery, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from service.simulation.clock import DAY, Clock
from service.simulation.config import SimulationConfig, SimulationSummary, default_truth_path
from service.simulation.delivery import deliver
from service.simulation.event_log import EventLog
from service.simulation.ndjson import write_events
from service.simulation.process import CustomerProcess, draw_population, weekly_campaigns
from service.simulation.truth import write_truth


def simulate(
    config: SimulationConfig,
    out_path: Path | str,
    truth_path: Path | str | None = None,
    progress: bool = True,
) -> SimulationSummary:
    """Writes the event stream to `out_path` and the ground truth to `truth_path`
    (default: `<out stem>.truth.csv` next to it). Same config, same bytes."""
    out_path = Path(out_path)
    truth_path = default_truth_path(out_path) if truth_path is None else Path(truth_path)
    for path in (out_path, truth_path):
        path.parent.mkdir(parents=True, exist_ok=True)

    rng = np.random.Generator(np.random.PCG64(config.seed))
    period = config.days * DAY
    clock = Clock(config.start, config.days)
    log = EventLog(period)
    process = CustomerProcess(
        rng,
        log,
        seed=config.seed,
        period=period,
        future_until=period + max(config.horizons) * DAY,
        campaigns=weekly_campaigns(config.start, period),
        refund_rate=config.refund_rate,
    )
    population = draw_population(rng, config.customers, period)
    outcomes = [
        process.run(index, traits)
        for index, traits in enumerate(
            tqdm(population, desc="customers", unit="cust", disable=not progress)
        )
    ]

    events = log.columns()
    delivery = deliver(
        events.occurred,
        period,
        rng,
        late_rate=config.late_rate,
        duplicate_rate=config.duplicate_rate,
    )
    write_events(
        out_path,
        events,
        delivery.order,
        clock=clock,
        seed=config.seed,
        customers=config.customers,
        progress=progress,
    )
    write_truth(
        truth_path, population, outcomes, clock=clock, period=period, horizons=config.horizons
    )
    return SimulationSummary(
        customers=config.customers,
        events_written=len(delivery.order),
        duplicates=delivery.duplicates,
        late=delivery.late,
        out_path=out_path,
        truth_path=truth_path,
    )
