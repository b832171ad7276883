"""Versioned model artifacts: `models/<name>/<version>/{model.onnx, manifest.json}`."""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import onnx

MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "models"
MODEL_NAMES = ("churn", "pcltv", "segment", "nbo")
LIBRARIES = ("lightgbm", "scikit-learn", "onnx", "onnxruntime", "onnxmltools", "skl2onnx")


def new_version() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def library_versions() -> dict[str, str]:
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
    library_versions: dict[str, str] = field(default_factory=library_versions)
    trained_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    sha256: str = ""

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        return cls(**data)


def save(model: onnx.ModelProto, manifest: Manifest, models_dir: Path = MODELS_DIR) -> Path:
    folder = models_dir / manifest.name / manifest.version
    folder.mkdir(parents=True, exist_ok=False)
    payload = model.SerializeToString()
    manifest.sha256 = hashlib.sha256(payload).hexdigest()
    (folder / "model.onnx").write_bytes(payload)
    (folder / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return folder


def load(folder: Path) -> tuple[bytes, Manifest]:
    """The model bytes, verified against the manifest's sha256."""
    manifest = Manifest.from_dict(json.loads((folder / "manifest.json").read_text()))
    payload = (folder / "model.onnx").read_bytes()
    if hashlib.sha256(payload).hexdigest() != manifest.sha256:
        raise ValueError(f"{folder}: model.onnx does not match its manifest sha256")
    return payload, manifest


def shipped_versions(models_dir: Path = MODELS_DIR) -> dict[str, list[str]]:
    """Versions on disk per model name, oldest first."""
    return {
        name: sorted(
            p.name for p in (models_dir / name).iterdir() if (p / "manifest.json").exists()
        )
        for name in MODEL_NAMES
        if (models_dir / name).is_dir()
    }
