"""ONNX graphs for the models, and the parity check every export must pass."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import onnx
from onnx import TensorProto, helper
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType

from service.modeling.runtime import INPUT, run, session

# Row subsampling every iteration, quiet, both cores: what every LightGBM model here shares.
LIGHTGBM_COMMON = dict(subsample=0.8, subsample_freq=1, verbose=-1, n_jobs=2)
OPSET = 15
PARITY_TOLERANCE = 1e-5


def _float32_floor(value: str) -> str:
    threshold = float(value)
    rounded = np.float32(threshold)
    if float(rounded) > threshold:
        rounded = np.nextafter(rounded, np.float32(-np.inf))
    return repr(float(rounded))


def snap_thresholds_to_float32(model) -> None:
    """Make every split threshold the largest float32 not above it.

    ONNX tree ensembles compare in float32; LightGBM in float64. For float32 inputs
    `x <= t` and `x <= floor32(t)` are the same test, so after this the native model
    predicts exactly as before and exactly as its ONNX export (no threshold falls
    between two float32 neighbours any more).
    """
    lines = model.booster_.model_to_string().split("\n")
    for i, line in enumerate(lines):
        if line.startswith("threshold="):
            values = line.removeprefix("threshold=").split()
            lines[i] = "threshold=" + " ".join(_float32_floor(v) for v in values)
    # Byte offsets of the trees no longer hold; without them LightGBM parses in order.
    lines = [line for line in lines if not line.startswith("tree_sizes=")]
    model._Booster = lgb.Booster(model_str="\n".join(lines))


def _lightgbm_graph(model, n_features: int) -> onnx.ModelProto:
    return convert_lightgbm(
        model,
        initial_types=[(INPUT, FloatTensorType([None, n_features]))],
        target_opset=OPSET,
        zipmap=False,
    )


def _append(graph_model: onnx.ModelProto, nodes, initializers, output: str) -> onnx.ModelProto:
    for opset in graph_model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = max(opset.version, OPSET)
    if not any(o.domain in ("", "ai.onnx") for o in graph_model.opset_import):
        graph_model.opset_import.append(helper.make_opsetid("", OPSET))
    graph = graph_model.graph
    graph.node.extend(nodes)
    graph.initializer.extend(initializers)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(output, TensorProto.FLOAT, [None, 1]))
    onnx.checker.check_model(graph_model)
    return graph_model


def _const(name: str, values, dtype=TensorProto.FLOAT):
    array = np.asarray(values)
    return helper.make_tensor(name, dtype, array.shape, array.flatten().tolist())


def calibrated_classifier(
    model: lgb.LGBMClassifier, n_features: int, slope: float, intercept: float
) -> onnx.ModelProto:
    """LightGBM probability, then Platt scaling on its log-odds: sigmoid(a * logit(p) + b)."""
    graph_model = _lightgbm_graph(model, n_features)
    probabilities = graph_model.graph.output[1].name
    c = "calibration_"  # prefix: the converter's graph already uses short names
    nodes = [
        helper.make_node("Slice", [probabilities, c + "col1", c + "col2", c + "axis"], [c + "p"]),
        helper.make_node("Clip", [c + "p", c + "min", c + "max"], [c + "clipped"]),
        helper.make_node("Sub", [c + "one", c + "clipped"], [c + "q"]),
        helper.make_node("Div", [c + "clipped", c + "q"], [c + "odds"]),
        helper.make_node("Log", [c + "odds"], [c + "logit"]),
        helper.make_node("Mul", [c + "logit", c + "slope"], [c + "scaled"]),
        helper.make_node("Add", [c + "scaled", c + "intercept"], [c + "z"]),
        helper.make_node("Sigmoid", [c + "z"], ["probability"]),
    ]
    initializers = [
        _const(c + "col1", [1], TensorProto.INT64),
        _const(c + "col2", [2], TensorProto.INT64),
        _const(c + "axis", [1], TensorProto.INT64),
        _const(c + "min", 1e-7),
        _const(c + "max", 1 - 1e-7),
        _const(c + "one", 1.0),
        _const(c + "slope", slope),
        _const(c + "intercept", intercept),
    ]
    return _append(graph_model, nodes, initializers, "probability")


def non_negative_regressor(model: lgb.LGBMRegressor, n_features: int) -> onnx.ModelProto:
    """LightGBM regression output clipped at zero (revenue cannot be negative)."""
    graph_model = _lightgbm_graph(model, n_features)
    raw = graph_model.graph.output[0].name
    nodes = [helper.make_node("Relu", [raw], ["value"], name="clip_at_zero")]
    return _append(graph_model, nodes, [], "value")


def check_parity(model: onnx.ModelProto, X: np.ndarray, native: np.ndarray) -> float:
    """Max |ONNX − native| on the holdout; export fails above PARITY_TOLERANCE."""
    onnx_out = run(session(model), X)[:, 0].astype(np.float64)
    difference = float(np.max(np.abs(onnx_out - native.reshape(-1)))) if len(X) else 0.0
    if difference > PARITY_TOLERANCE:
        raise ValueError(f"ONNX/native parity {difference:.3g} exceeds {PARITY_TOLERANCE}")
    return difference
