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
# The graphs written here by hand: IR 8 is the oldest that carries opset 15.
STANDALONE_IR_VERSION = 8


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


def _standalone(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = STANDALONE_IR_VERSION
    onnx.checker.check_model(model)
    return model


def constant_multiplier(n_features: int) -> onnx.ModelProto:
    """The multiplier graph of a probabilistic-only pCLTV model: 1 for every row (its blend
    weight is 0, so the served value is the probabilistic revenue alone)."""
    nodes = [
        helper.make_node("Shape", [INPUT], ["rows"], end=1),
        helper.make_node("Concat", ["rows", "one_column"], ["shape"], axis=0),
        helper.make_node("ConstantOfShape", ["shape"], ["value"], value=_const("one", [1.0])),
    ]
    graph = helper.make_graph(
        nodes,
        "constant_multiplier",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("value", TensorProto.FLOAT, [None, 1])],
        [_const("one_column", [1], TensorProto.INT64)],
    )
    return _standalone(graph)


def bgnbd_churn(
    columns: dict[str, int],
    n_features: int,
    bgnbd: dict[str, float],
    horizon_weeks: float,
    without_orders: float,
) -> onnx.ModelProto:
    """P(no order in the next `horizon_weeks` | history) under the BG/NBD, in double
    precision from three feature columns (`columns`: orders_total, avg_days_between_orders,
    recency_days); `without_orders` for customers without a counted order. The formula
    is `service.training.churn.bgnbd_churn`'s, which the parity check compares with."""
    r, alpha, a, b = (bgnbd[k] for k in ("r", "alpha", "a", "b"))
    nodes, initializers = [], []

    def const(name, value, dtype=TensorProto.DOUBLE):
        initializers.append(_const(name, value, dtype))
        return name

    def op(kind, inputs, output, **attributes):
        nodes.append(helper.make_node(kind, inputs, [output], **attributes))
        return output

    zero = const("zero", 0.0)

    def column(name):
        index = const(f"{name}_index", [columns[name]], TensorProto.INT64)
        raw = op(
            "Cast",
            [op("Gather", [INPUT, index], f"{name}_f32", axis=1)],
            name + "_raw",
            to=TensorProto.DOUBLE,
        )
        return op("Where", [op("IsNaN", [raw], f"{name}_nan"), zero, raw], name)

    orders, gap, recency = (
        column(n) for n in ("orders_total", "avg_days_between_orders", "recency_days")
    )
    week = const("week", 7.0)
    buyer = op("GreaterOrEqual", [orders, const("one", 1.0)], "buyer")
    x = op("Max", [op("Sub", [orders, "one"], "orders_less_one"), zero], "x")
    days_x = op("Mul", [gap, x], "t_x_days")
    t_x = op("Div", [days_x, week], "t_x")
    T = op("Div", [op("Add", [days_x, recency], "T_days"), week], "T")
    shape = op("Add", [x, const("r", r)], "r_plus_x")
    log_alpha_T = op("Log", [op("Add", [T, const("alpha", alpha)], "alpha_T")], "log_alpha_T")
    log_alpha_tx = op("Log", [op("Add", [t_x, "alpha"], "alpha_t_x")], "log_alpha_t_x")
    # log odds of having dropped out: log a - log(b + x - 1) + (r + x) log((α+T)/(α+t_x))
    b_x = op("Add", [op("Max", [x, "one"], "x_at_least_one"), const("b_less_one", b - 1)], "b_x")
    odds = op("Sub", [const("log_a", np.log(a)), op("Log", [b_x], "log_b_x")], "log_a_over_b_x")
    spread = op("Sub", [log_alpha_T, log_alpha_tx], "log_ratio")
    odds = op("Add", [odds, op("Mul", [shape, spread], "scaled_ratio")], "log_odds_dropped")
    alive = op("Sigmoid", [op("Neg", [odds], "neg_log_odds")], "alive_if_repeat")
    repeat = op("Greater", [x, zero], "repeat")
    alive = op("Where", [repeat, alive, "one"], "alive")
    ahead = op("Add", [T, const("alpha_horizon", alpha + horizon_weeks)], "alpha_T_horizon")
    quiet_log = op(
        "Mul",
        [shape, op("Sub", [log_alpha_T, op("Log", [ahead], "log_ahead")], "log_quiet_ratio")],
        "log_quiet",
    )
    quiet = op("Exp", [quiet_log], "quiet_if_alive")
    churn = op(
        "Add",
        [op("Sub", ["one", alive], "dropped"), op("Mul", [alive, quiet], "alive_quiet")],
        "churn_buyer",
    )
    churn = op("Where", [buyer, churn, const("without_orders", without_orders)], "churn")
    op("Cast", [churn], "probability", to=TensorProto.FLOAT)
    graph = helper.make_graph(
        nodes,
        "bgnbd_churn",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None, 1])],
        initializers,
    )
    return _standalone(graph)
