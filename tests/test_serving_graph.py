"""The composed serving graph answers exactly what each model and formula answers alone:
the churn graph's probability, `pcltv.blend` × margin × discount on the pCLTV graph's
multiplier, and the RFM scores from the segment graph's quantile bins."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from service.features.vector import MODEL_FEATURES
from service.modeling import pcltv
from service.modeling.artifacts import MODELS_DIR, Artifact, shipped_versions
from service.modeling.rfm import RFM_COLUMNS
from service.modeling.runtime import INPUT, LoadedModel, run, session
from service.scoring.graph import scoring_graph


def shipped(name: str) -> LoadedModel:
    versions = shipped_versions()[name]
    return LoadedModel(Artifact.load(MODELS_DIR / name / versions[-1]))


def feature_rows(n: int, seed: int) -> np.ndarray:
    """Plausible feature matrices: buyers and non-buyers, missing values where allowed."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 30, (n, len(MODEL_FEATURES))).astype(np.float32)
    column = MODEL_FEATURES.index
    orders = rng.integers(0, 40, n)
    X[:, column("orders_total")] = orders
    X[:, column("revenue_total")] = orders * rng.uniform(2, 400, n)
    X[:, column("tenure_days")] = rng.integers(0, 900, n)
    X[:, column("avg_days_between_orders")] = np.where(orders >= 2, rng.uniform(1, 90, n), np.nan)
    for name, values in (
        ("recency_days", rng.integers(0, 700, n)),
        ("aov", rng.uniform(2, 400, n)),
    ):
        X[:, column(name)] = np.where(orders >= 1, values, np.nan)
    X[rng.random(n) < 0.3, column("last_csat")] = np.nan
    return X


def run_alone(model: LoadedModel, X: np.ndarray) -> np.ndarray:
    return run(session(model.graph), X)


def serve(models: dict[str, LoadedModel], X: np.ndarray) -> dict[str, np.ndarray]:
    graph = scoring_graph({name: (m.graph, m.manifest) for name, m in models.items()})
    composed = session(graph)
    model_input = models["pcltv"].model_input(X) if "pcltv" in models else X
    outputs = composed.run(None, {INPUT: model_input})
    return dict(zip([o.name for o in composed.get_outputs()], outputs, strict=True))


@pytest.mark.parametrize(("margin", "discount_rate"), [(1.0, 0.0), (0.35, 0.12)])
def test_composed_graph_equals_each_model_alone(margin, discount_rate):
    churn, segmenter = shipped("churn"), shipped("segment")
    value_model = shipped("pcltv")
    parameters = {
        **value_model.manifest.parameters,
        "margin": margin,
        "annual_discount_rate": discount_rate,
    }
    value_model = LoadedModel(
        Artifact(replace(value_model.manifest, parameters=parameters), value_model.graph)
    )
    X = feature_rows(500, seed=11)
    served = serve({"churn": churn, "pcltv": value_model, "segment": segmenter}, X)

    np.testing.assert_array_equal(served["churn"][:, 0], run_alone(churn, X)[:, 0])

    augmented = value_model.model_input(X)
    multiplier = run_alone(value_model, augmented)[:, 0].astype(float)
    expected_value = (
        pcltv.blend(multiplier, augmented, parameters)
        * margin
        * pcltv.discount_factor(value_model.manifest.horizon_days, discount_rate)
    )
    np.testing.assert_allclose(served["pcltv"][:, 0], expected_value, rtol=1e-12, atol=1e-9)
    assert served["pcltv"][:, 0].max() > 0

    bins = run_alone(segmenter, X[:, RFM_COLUMNS])
    n_bins = np.array(segmenter.manifest.parameters["n_bins"])
    expected_rfm = np.rint(1 + bins * 4 / np.maximum(n_bins - 1, 1)).astype(int)
    expected_rfm[:, 0] = 6 - expected_rfm[:, 0]
    buyers = X[:, MODEL_FEATURES.index("orders_total")] >= 1
    np.testing.assert_array_equal(served["segment"][buyers], expected_rfm[buyers])
    assert set(np.unique(served["segment"][buyers])) == {1, 2, 3, 4, 5}


def identity_binner() -> bytes:
    """A 'segment model' whose bins are its input, to drive the score mapping directly."""
    rfm = helper.make_tensor_value_info("rfm", TensorProto.FLOAT, [None, 3])
    out = helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 3])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["rfm"], ["variable"])], "g", [rfm], [out]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def test_scores_spread_collapsed_bins_and_reverse_recency():
    manifest = replace(shipped("segment").manifest, parameters={"n_bins": [5, 3, 5]})
    X = np.zeros((2, len(MODEL_FEATURES)), dtype=np.float32)
    X[:, RFM_COLUMNS] = [[0, 0, 4], [4, 2, 0]]
    served = serve({"segment": LoadedModel(Artifact(manifest, identity_binner()))}, X)
    assert served["segment"].tolist() == [[5, 1, 5], [1, 5, 1]]


def test_segment_only_graph_loads_without_the_other_models():
    graph = scoring_graph({"segment": (shipped("segment").graph, shipped("segment").manifest)})
    assert [o.name for o in graph.graph.output] == ["segment"]
    onnx.checker.check_model(graph)
