"""Versioned model artifacts: `models/<name>/<version>/{model.onnx, manifest.json,
explainer.txt}`, the one format training writes, the registry stores and serving loads.

`explainer.txt` is optional: the native LightGBM model string of a tree model, from which
per-request feature contributions are computed (the ONNX graph cannot give them).
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

# The shipped default models, read-only: `scorer train` writes under SCORER_DATA_DIR/models,
# so a fresh database activates these, not whatever was last trained on this machine.
MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "models"
MODEL_NAMES = ("churn", "pcltv", "segment", "nbo")
LIBRARIES = ("lightgbm", "scikit-learn", "onnx", "onnxruntime", "onnxmltools", "skl2onnx")
GRAPH_FILE, MANIFEST_FILE, EXPLAINER_FILE = "model.onnx", "manifest.json", "explainer.txt"


def new_version() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def library_versions() -> dict[str, str]:
    """Read from package metadata: recording a version must not import the library."""
    versions = {name: package_version(name) for name in LIBRARIES}
    versions["python"] = platform.python_version()
    return versions


@dataclass
class Manifest:
    name: str
    version: str
    features: list[str]
    output: str
    horizon_days: int | None
    training_window: dict[str, Any]
    metrics: dict[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)
    # The distributions of the inputs and predictions on the reference day, which drift is
    # measured against (`service.modeling.monitoring`); empty in manifests older than it.
    reference: dict[str, Any] = field(default_factory=dict)
    library_versions: dict[str, str] = field(default_factory=library_versions)
    trained_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    sha256: str = ""

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass
class Artifact:
    """One model version: its manifest, serialized ONNX graph and optional explainer."""

    manifest: Manifest
    graph: bytes
    explainer: str | None = None

    def save(self, models_dir: Path) -> Path:
        """Writes `models_dir/<name>/<version>/`, recording the graph's sha256."""
        folder = models_dir / self.manifest.name / self.manifest.version
        folder.mkdir(parents=True, exist_ok=False)
        self.manifest.sha256 = hashlib.sha256(self.graph).hexdigest()
        (folder / GRAPH_FILE).write_bytes(self.graph)
        self.write_manifest(folder)
        if self.explainer is not None:
            (folder / EXPLAINER_FILE).write_text(self.explainer)
        return folder

    def write_manifest(self, folder: Path) -> None:
        (folder / MANIFEST_FILE).write_text(json.dumps(asdict(self.manifest), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> Artifact:
        """The artifact in `folder`, its graph verified against the manifest's sha256."""
        manifest = Manifest.from_dict(json.loads((folder / MANIFEST_FILE).read_text()))
        graph = (folder / GRAPH_FILE).read_bytes()
        if hashlib.sha256(graph).hexdigest() != manifest.sha256:
            raise ValueError(f"{folder}: {GRAPH_FILE} does not match its manifest sha256")
        explainer = folder / EXPLAINER_FILE
        return cls(manifest, graph, explainer.read_text() if explainer.exists() else None)


def shipped_versions(models_dir: Path = MODELS_DIR) -> dict[str, list[str]]:
    """Versions on disk per model name, oldest first."""
    return {
        name: sorted(p.name for p in (models_dir / name).iterdir() if (p / MANIFEST_FILE).exists())
        for name in MODEL_NAMES
        if (models_dir / name).is_dir()
    }
