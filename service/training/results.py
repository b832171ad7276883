"""What a training run produces, by name: trained artifacts, their evaluation, the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from service.modeling.artifacts import Artifact


@dataclass
class Evaluated:
    """A trained model with its predictions on the evaluation cutoff and the truth."""

    artifact: Artifact
    actual: np.ndarray  # churned (1/0), or net revenue in the horizon
    predicted: np.ndarray


@dataclass
class TrainResult:
    folders: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, dict] = field(default_factory=dict)
    report: Path | None = None
