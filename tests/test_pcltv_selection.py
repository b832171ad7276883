"""The pure pieces of model choice and of the served interval: the trees' weight by the
one-standard-error rule, the serving-mix weights, the 80% interval, and the BG/NBD churn
graph against its formula."""

from __future__ import annotations

import numpy as np
import pytest

from service.features.vector import MODEL_FEATURES
from service.modeling import clv
from service.modeling.pcltv import interval
from service.modeling.runtime import run, session
from service.training import churn, onnx_export
from service.training import pcltv as training

RNG = np.random.default_rng(7)


def test_clearly_better_trees_get_the_whole_weight():
    truth = RNG.gamma(2.0, 50.0, 5000)
    trees = truth + RNG.normal(0, 1, truth.size)
    probabilistic = truth.mean() + RNG.normal(0, 1, truth.size)
    assert training.blend_weight(trees, probabilistic, truth, np.ones(truth.size)) == 1.0


def test_indistinguishable_trees_leave_the_probabilistic_model_served():
    rng = np.random.default_rng(11)  # its own draws: the outcome must not hang on test order
    truth = rng.gamma(0.3, 200.0, 5000)  # heavy-tailed: the noise hides small differences
    probabilistic = np.full(truth.size, truth.mean())
    # Noise that knows nothing of the truth: uncorrelated with the residuals in this very
    # sample (left to chance, about one draw in six beats one standard error).
    residual = truth - probabilistic
    noise = rng.normal(0, 1, truth.size)
    noise -= residual * (noise @ residual) / (residual @ residual)
    trees = probabilistic * (1 + 0.01 * noise)
    assert training.blend_weight(trees, probabilistic, truth, np.ones(truth.size)) == 0.0


def test_serving_mix_gives_the_old_customers_their_serving_share():
    then = np.array([10.0] * 90 + [400.0] * 10)
    now = np.array([10.0] * 40 + [400.0] * 60)
    weights = training.serving_mix(then, now, trained=300.0)
    assert weights[then > 300].sum() / weights.sum() == pytest.approx(0.6)
    # Nobody that old when serving: their validation errors do not count.
    assert np.all(training.serving_mix(then, now[:40], trained=300.0)[then > 300] == 0)
    # Nobody that old on validation: nothing to reweight.
    assert np.all(training.serving_mix(then[:90], now, trained=300.0) == 1.0)


def test_the_interval_holds_about_eighty_percent_with_or_without_zeros():
    for zeros in (0.0, 0.6):
        predicted = RNG.gamma(2.0, 30.0, 20000)
        spend = RNG.gamma(4.0, predicted / 4.0)
        actual = np.where(RNG.random(predicted.size) < zeros, 0.0, spend / (1 - zeros))
        bands, covered = training.fit_interval(predicted, actual, predicted)
        assert covered == pytest.approx(0.8, abs=0.03), zeros
        low, high = interval(predicted, {"interval": bands})
        assert np.all(low <= predicted + 1e-9) and np.all(high >= low)
        # Served on fresh customers of the same kind, it still covers about 80%.
        fresh = RNG.gamma(2.0, 30.0, 20000)
        outcome = np.where(
            RNG.random(fresh.size) < zeros, 0.0, RNG.gamma(4.0, fresh / 4.0) / (1 - zeros)
        )
        low, high = interval(fresh, {"interval": bands})
        assert training.coverage(outcome, low, high) == pytest.approx(0.8, abs=0.03), zeros


def test_the_bgnbd_churn_graph_computes_its_formula():
    bgnbd = clv.BgNbdParams(r=0.25, alpha=4.4, a=0.79, b=2.4)
    X = np.full((500, len(MODEL_FEATURES)), np.nan, dtype=np.float32)
    orders = RNG.integers(0, 30, 500).astype(np.float32)
    X[:, MODEL_FEATURES.index("orders_total")] = np.where(orders > 0, orders, np.nan)
    X[:, MODEL_FEATURES.index("avg_days_between_orders")] = np.where(
        orders > 1, RNG.uniform(1, 60, 500), np.nan
    )
    X[:, MODEL_FEATURES.index("recency_days")] = np.where(
        orders > 0, RNG.uniform(0, 400, 500), np.nan
    )
    columns = {
        n: MODEL_FEATURES.index(n)
        for n in ("orders_total", "avg_days_between_orders", "recency_days")
    }
    graph = onnx_export.bgnbd_churn(
        columns, len(MODEL_FEATURES), vars(bgnbd), 90 / 7, without_orders=0.95
    )
    native = churn.bgnbd_churn(bgnbd, X, 90, without_orders=0.95)
    assert np.max(np.abs(run(session(graph), X)[:, 0] - native)) < 1e-6
    assert np.all(native[orders == 0] == 0.95)
    assert np.all((native > 0) & (native <= 1))
