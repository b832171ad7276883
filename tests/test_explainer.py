"""The ctypes TreeSHAP explainer: lightgbm's numbers, without loading lightgbm or sklearn."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from service.modeling.explainer import TreeExplainer

ROOT = Path(__file__).resolve().parent.parent
MODELS = [ROOT / "models" / name / "20261203-155407" for name in ("churn", "pcltv")]


def _model(folder: Path) -> tuple[str, int]:
    """The explainer text and its column count (the manifest's feature list)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    return (folder / "explainer.txt").read_text(), len(manifest["features"])


def _rows(text: str, n_features: int, n_rows: int, seed: int) -> np.ndarray:
    """float32 rows across each feature's training range (the model's feature_infos), with the
    cells where routing is decided specially: split thresholds exactly, zeros (dropped from
    LightGBM's sparse row) and NaN (missing), here and there and as whole columns."""
    fields: dict[str, list[list[str]]] = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        fields.setdefault(key, []).append(value.split())
    bounds = [info.strip("[]").split(":") for info in fields["feature_infos"][0]]
    low, high = np.array(bounds, dtype=np.float64).T
    features = np.concatenate(fields["split_feature"]).astype(int)
    thresholds = np.concatenate(fields["threshold"]).astype(np.float64)
    rng = np.random.default_rng(seed)
    X = rng.uniform(low, high, size=(n_rows, n_features))
    picks = rng.integers(0, len(features), 3 * n_rows)
    X[rng.integers(0, n_rows, 3 * n_rows), features[picks]] = thresholds[picks]
    X[rng.random(X.shape) < 0.1] = 0.0
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, rng.choice(n_features, 2, replace=False)] = np.nan
    return X.astype(np.float32)


@pytest.fixture(params=MODELS, ids=lambda folder: folder.parent.name, scope="module")
def model(request) -> tuple[str, int]:
    return _model(request.param)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matrix_contributions_equal_lightgbm(model, dtype):
    text, n_features = model
    X = _rows(text, n_features, 300, seed=7).astype(dtype)
    ours = TreeExplainer(text).contributions(X)
    assert ours.shape == (300, n_features + 1) and ours.dtype == np.float64
    np.testing.assert_array_equal(ours, lgb.Booster(model_str=text).predict(X, pred_contrib=True))


def test_single_row_contributions_equal_lightgbm(model):
    text, n_features = model
    explainer, booster = TreeExplainer(text), lgb.Booster(model_str=text)
    for row in _rows(text, n_features, 20, seed=11):
        X = row[None, :]
        np.testing.assert_array_equal(
            explainer.contributions(X), booster.predict(X, pred_contrib=True)
        )


def test_serving_process_loads_neither_lightgbm_nor_sklearn():
    text_path = MODELS[0] / "explainer.txt"
    code = (
        "import json, sys\n"
        "import numpy as np\n"
        "from service.modeling.explainer import TreeExplainer\n"
        f"explainer = TreeExplainer(open({str(text_path)!r}).read())\n"
        "row = np.zeros((1, explainer.n_features), dtype=np.float32)\n"
        "shape = explainer.contributions(row).shape\n"
        "loaded = [m for m in ('lightgbm', 'sklearn', 'scipy', 'pandas') if m in sys.modules]\n"
        "print(json.dumps({'shape': shape, 'loaded': loaded}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    _, n_features = _model(MODELS[0])
    assert json.loads(result.stdout) == {"shape": [1, n_features + 1], "loaded": []}


def test_wrong_column_count_is_a_value_error(model):
    text, n_features = model
    explainer = TreeExplainer(text)
    with pytest.raises(ValueError, match=f"{n_features} columns"):
        explainer.contributions(np.zeros((1, n_features - 1), dtype=np.float32))
    with pytest.raises(ValueError, match=f"{n_features} columns"):
        explainer.contributions(np.zeros(n_features, dtype=np.float32))
