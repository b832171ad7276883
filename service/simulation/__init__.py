"""Synthetic customers for development, load tests and model training.

`simulate()` (and `scorer simulate`) writes a realistic e-commerce event
stream, in the shape `POST /v1/events` accepts and in the messy order a real
pipeline delivers (late and duplicated events), together with a ground-truth
CSV of each customer's hidden parameters and what they go on to buy after the
observed period. The process is described in `service.simulation.process`.
"""

from service.simulation.config import SimulationConfig, SimulationSummary
from service.simulation.simulator import simulate

__all__ = ["SimulationConfig", "SimulationSummary", "simulate"]
