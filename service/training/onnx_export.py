"""ONNX graphs for the models, and the parity check every export must pass."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType

INPUT = "features"
OPSET = 15
PARITY_TOLERANCE = 1e-5


def _lightgbm_graph(model, n_features: int) -> onnx.ModelProto:
    return convert_lightgbm(
        model,
        initial_types=[(INPUT, FloatTensorType([None, n_features]))],
        target_opset={"": OPSET, "ai.onnx.ml": 3},
        zipmap=False,
    )


def _append(graph_model: onnx.ModelProto, nodes, initializers, output: str) -> onnx.ModelProto:
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
    nodes = [
        helper.make_node("Slice", [probabilities, "col1", "col2", "axis1"], ["p"]),
        helper.make_node("Clip", ["p", "p_min", "p_max"], ["p_clipped"]),
        helper.make_node("Sub", ["one", "p_clipped"], ["q"]),
        helper.make_node("Div", ["p_clipped", "q"], ["odds"]),
        helper.make_node("Log", ["odds"], ["logit"]),
        helper.make_node("Mul", ["logit", "slope"], ["scaled"]),
        helper.make_node("Add", ["scaled", "intercept"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["probability"]),
    ]
    initializers = [
        _const("col1", [1], TensorProto.INT64),
        _const("col2", [2], TensorProto.INT64),
        _const("axis1", [1], TensorProto.INT64),
        _const("p_min", 1e-7),
        _const("p_max", 1 - 1e-7),
        _const("one", 1.0),
        _const("slope", slope),
        _const("intercept", intercept),
    ]
    return _append(graph_model, nodes, initializers, "probability")


def non_negative_regressor(model: lgb.LGBMRegressor, n_features: int) -> onnx.ModelProto:
    """LightGBM regression output clipped at zero (revenue cannot be negative)."""
    graph_model = _lightgbm_graph(model, n_features)
    raw = graph_model.graph.output[0].name
    nodes = [helper.make_node("Relu", [raw], ["value"])]
    return _append(graph_model, nodes, [], "value")


def session(model: onnx.ModelProto | bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # Scoring requests are tiny: thread pools would only add wake-up latency.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    payload = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, X: np.ndarray) -> np.ndarray:
    (output,) = sess.run(None, {sess.get_inputs()[0].name: X.astype(np.float32)})
    return np.asarray(output).reshape(len(X), -1)


def check_parity(model: onnx.ModelProto, X: np.ndarray, native: np.ndarray) -> float:
    """Max |ONNX − native| on the holdout; export fails above PARITY_TOLERANCE."""
    onnx_out = run(session(model), X)[:, 0].astype(np.float64)
    difference = float(np.max(np.abs(onnx_out - native.reshape(-1)))) if len(X) else 0.0
    if difference > PARITY_TOLERANCE:
        raise ValueError(f"ONNX/native parity {difference:.3g} exceeds {PARITY_TOLERANCE}")
    return difference
