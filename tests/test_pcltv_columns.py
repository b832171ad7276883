"""The one-row (API) and batch (training, rescore) paths of the pCLTV probabilistic
columns compute the same numbers."""

from __future__ import annotations

import numpy as np

from service.features.vector import MODEL_FEATURES
from service.modeling import clv, pcltv


def test_single_row_columns_equal_batch_columns():
    rng = np.random.default_rng(3)
    n = 200
    X = np.full((n, len(MODEL_FEATURES)), np.nan, dtype=np.float32)
    orders = rng.integers(0, 40, n)
    X[:, MODEL_FEATURES.index("orders_total")] = orders
    X[:, MODEL_FEATURES.index("avg_days_between_orders")] = np.where(
        orders >= 2, rng.uniform(1, 90, n), np.nan
    )
    X[:, MODEL_FEATURES.index("recency_days")] = np.where(
        orders >= 1, rng.integers(0, 700, n), np.nan
    )
    X[:, MODEL_FEATURES.index("aov")] = np.where(orders >= 1, rng.uniform(2, 400, n), np.nan)
    model = pcltv.Probabilistic(
        clv.BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426),
        clv.GammaGammaParams(p=6.25, q=3.74, v=15.44),
        365,
    )
    batch = model.columns(X)
    rows = np.vstack([model.columns(X[i : i + 1]) for i in range(n)])
    np.testing.assert_allclose(rows, batch, rtol=1e-9, atol=1e-12)
    assert (batch[orders == 0] == 0).all() and (batch[orders > 0, 0] > 0).all()
