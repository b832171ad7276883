"""What a simulation run is asked to produce, and what it reports back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

DEFAULT_START = date(2025, 1, 1)
DEFAULT_HORIZONS = (90, 365)


@dataclass(frozen=True)
class SimulationConfig:
    customers: int
    days: int
    seed: int = 0
    # A fixed calendar start keeps the output a function of the arguments alone,
    # never of the day the command happens to run.
    start: date = DEFAULT_START
    horizons: tuple[int, ...] = DEFAULT_HORIZONS
    duplicate_rate: float = 0.01
    late_rate: float = 0.02
    refund_rate: float = 0.05

    def __post_init__(self) -> None:
        if self.customers < 1:
            raise ValueError("customers must be at least 1")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.seed < 0:
            raise ValueError("seed must be non-negative")
        if not self.horizons or min(self.horizons) < 1:
            raise ValueError("horizons must be one or more positive numbers of days")
        for name in ("duplicate_rate", "late_rate", "refund_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        # Sorted and unique so the truth file's columns don't depend on how the
        # horizons were spelled on the command line.
        object.__setattr__(self, "horizons", tuple(sorted(set(self.horizons))))


@dataclass(frozen=True)
class SimulationSummary:
    customers: int
    events_written: int
    duplicates: int
    late: int
    out_path: Path
    truth_path: Path

    def line(self) -> str:
        return (
            f"simulated {self.customers} customers: {self.events_written} events written "
            f"({self.duplicates} duplicates, {self.late} late) to {self.out_path}; "
            f"ground truth in {self.truth_path}"
        )


def default_truth_path(out_path: Path) -> Path:
    return out_path.with_name(f"{out_path.stem}.truth.csv")
