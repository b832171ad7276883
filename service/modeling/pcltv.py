"""The served pCLTV: the trees' multiplier of a BG/NBD + Gamma-Gamma base, blended.

Trees cannot extrapolate: a customer buying more often, or for longer, than anyone in the
training data would be capped at the largest leaf. So the trees learn a *multiplier* of a
base that does extrapolate, the BG/NBD + Gamma-Gamma expected revenue (plus a constant,
for customers without orders), and see the probabilistic model's outputs as features too.
The ONNX graph is the multiplier; serving computes the probabilistic columns and the
product from the parameters in the model's manifest:

    value = w · max(multiplier, 0) · (revenue + offset) · scale · anchor + (1 − w) · revenue

with w fitted on a validation window and the anchor setting the trees' level for customers
older than any they were trained on (see `service.training.pcltv`). A probabilistic-only
model (too little labelled history for trees) has w = 0 and a constant multiplier graph:
its value is the revenue alone.

The BG/NBD inputs come from feature columns, so online and offline agree exactly:
x = orders_total − 1, t_x = avg_days_between_orders · x, T = t_x + recency_days
(in weeks), monetary value = aov.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass

import numpy as np

from service.features.vector import MODEL_FEATURES
from service.modeling import clv, pareto

WEEK = 7.0
PROBABILISTIC_FEATURES = (
    "bgnbd_expected_purchases",
    "bgnbd_probability_alive",
    "gamma_gamma_expected_spend",
    "bgnbd_expected_revenue",
)
FEATURES = (*MODEL_FEATURES, *PROBABILISTIC_FEATURES)
_COLUMN = {name: i for i, name in enumerate(MODEL_FEATURES)}
TENURE_COLUMN = _COLUMN["tenure_days"]


def _column(X: np.ndarray, name: str) -> np.ndarray:
    return X[:, MODEL_FEATURES.index(name)].astype(np.float64)


def bgnbd_inputs(X: np.ndarray) -> tuple[np.ndarray, ...]:
    """(buyer mask, x, t_x, T in weeks, monetary value) from feature columns."""
    orders = np.nan_to_num(_column(X, "orders_total"))
    buyers = orders >= 1
    x = np.where(buyers, orders - 1, 0.0)
    t_x = np.nan_to_num(_column(X, "avg_days_between_orders")) * x
    T = t_x + np.nan_to_num(_column(X, "recency_days"))
    monetary = np.nan_to_num(_column(X, "aov"))
    return buyers, x, t_x / WEEK, T / WEEK, monetary


@dataclass
class Probabilistic:
    """Fitted purchase-count and Gamma-Gamma spend parameters and the horizon they predict.

    The purchase counts come from the Pareto/NBD when `pareto_nbd` is set (it won on
    validation), else from the BG/NBD; the columns keep their `bgnbd_` names either way,
    because they are the served graphs' input names."""

    bgnbd: clv.BgNbdParams
    gamma_gamma: clv.GammaGammaParams
    horizon_days: int
    pareto_nbd: pareto.ParetoNbdParams | None = None

    @classmethod
    def from_parameters(cls, parameters: dict) -> Probabilistic:
        counts = parameters.get("pareto_nbd")
        return cls(
            clv.BgNbdParams(**parameters["bgnbd"]),
            clv.GammaGammaParams(**parameters["gamma_gamma"]),
            parameters["probabilistic_horizon_days"],
            pareto.ParetoNbdParams(**counts) if counts else None,
        )

    def parameters(self) -> dict:
        counts = {"pareto_nbd": asdict(self.pareto_nbd)} if self.pareto_nbd else {}
        return {
            "bgnbd": asdict(self.bgnbd),
            "gamma_gamma": asdict(self.gamma_gamma),
            "probabilistic_horizon_days": self.horizon_days,
            **counts,
        }

    @property
    def rate_prior(self) -> tuple[float, float]:
        """(r, alpha) of the purchase-rate Gamma prior of the model in use."""
        counts = self.pareto_nbd or self.bgnbd
        return counts.r, counts.alpha

    def _purchases(self, x, t_x, T) -> tuple[np.ndarray, np.ndarray]:
        t = self.horizon_days / WEEK
        if self.pareto_nbd is not None:
            return (
                pareto.expected_purchases(self.pareto_nbd, t, x, t_x, T),
                pareto.probability_alive(self.pareto_nbd, x, t_x, T),
            )
        return (
            clv.expected_purchases(self.bgnbd, t, x, t_x, T),
            clv.probability_alive(self.bgnbd, x, t_x, T),
        )

    def _purchases_scalar(self, x: float, t_x: float, T: float) -> tuple[float, float]:
        t = self.horizon_days / WEEK
        if self.pareto_nbd is not None:
            return pareto.outlook_scalar(self.pareto_nbd, t, x, t_x, T)
        return clv.expected_purchases_scalar(self.bgnbd, t, x, t_x, T)

    def columns(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 1:
            return np.array([self._row_columns(X[0])])
        buyers, x, t_x, T, monetary = bgnbd_inputs(X)
        out = np.zeros((len(X), len(PROBABILISTIC_FEATURES)))
        if buyers.any():
            b = buyers
            purchases, alive = self._purchases(x[b], t_x[b], T[b])
            spend = clv.expected_average_spend(self.gamma_gamma, x[b], monetary[b])
            out[b, 0] = purchases
            out[b, 1] = alive
            out[b, 2] = spend
            out[b, 3] = purchases * spend
        return out

    def _row_columns(self, row: np.ndarray) -> list[float]:
        """`columns` for one customer in plain floats: the API scores one row at a time
        and numpy's per-call overhead would dominate (a test checks both agree)."""

        def value(name: str) -> float:
            number = float(row[_COLUMN[name]])
            return 0.0 if math.isnan(number) else number

        orders = value("orders_total")
        if orders < 1:
            return [0.0] * len(PROBABILISTIC_FEATURES)
        x = orders - 1
        t_x = value("avg_days_between_orders") * x
        T = (t_x + value("recency_days")) / WEEK
        t_x /= WEEK
        purchases, alive = self._purchases_scalar(x, t_x, T)
        spend = clv.expected_average_spend_scalar(self.gamma_gamma, x, value("aov"))
        return [purchases, alive, spend, purchases * spend]

    def outlook(self, row: np.ndarray) -> dict[str, float | None]:
        """For one customer (a model-feature row): repeat orders expected over the horizon,
        the probability of still being an active buyer, and the median wait in days to the
        next order if so. The wait: an active buyer's purchase rate given its history is
        Gamma(r + x, alpha + T) in the BG/NBD and the Pareto/NBD alike, so P(no order
        within s | active) = ((alpha + T) / (alpha + T + s))^(r + x), which is 1/2 at
        s = (alpha + T) * (2^(1 / (r + x)) - 1). None for a customer without orders
        (outside the model)."""
        purchases, alive, _, _ = self._row_columns(row)
        orders = float(row[_COLUMN["orders_total"]])
        if math.isnan(orders) or orders < 1:
            return {"expected_orders": None, "p_alive": None, "next_order_days": None}
        x = orders - 1
        recency = float(np.nan_to_num(row[_COLUMN["recency_days"]]))
        gap = float(np.nan_to_num(row[_COLUMN["avg_days_between_orders"]]))
        T = (gap * x + recency) / WEEK
        r, alpha = self.rate_prior
        wait_weeks = (alpha + T) * (2 ** (1 / (r + x)) - 1)
        return {
            "expected_orders": purchases,
            "p_alive": alive,
            "next_order_days": wait_weeks * WEEK,
        }

    def augment(self, X: np.ndarray) -> np.ndarray:
        return np.hstack([X, self.columns(X)]).astype(np.float32)


def probabilistic_revenue(X_augmented: np.ndarray) -> np.ndarray:
    column = X_augmented[:, FEATURES.index("bgnbd_expected_revenue")].astype(np.float64)
    return np.nan_to_num(column)


def base(X_augmented: np.ndarray, offset: float, scale: float) -> np.ndarray:
    return (probabilistic_revenue(X_augmented) + offset) * scale


def anchor(X_augmented: np.ndarray, parameters: dict) -> np.ndarray:
    """Per customer, the factor on the trees' value: `anchor_scale` for customers older
    (in tenure) than any the trees were trained on, 1 for the rest (see
    `service.training.pcltv.PcltvModel.anchored`); 1 for models without an anchor."""
    older = parameters.get("anchor_tenure_days")
    if older is None:
        return np.ones(len(X_augmented))
    tenure = X_augmented[:, TENURE_COLUMN].astype(np.float64)
    return np.where(tenure > older, parameters["anchor_scale"], 1.0)


def blend(multiplier: np.ndarray, X_augmented: np.ndarray, parameters: dict) -> np.ndarray:
    """The served value, from the constants recorded in the model's manifest."""
    trees = np.maximum(multiplier, 0.0) * base(
        X_augmented, parameters["base_offset"], parameters["base_scale"]
    )
    trees = trees * anchor(X_augmented, parameters)
    weight = parameters["blend_weight"]
    return weight * trees + (1 - weight) * probabilistic_revenue(X_augmented)


def discount_factor(horizon_days: int, annual_rate: float) -> float:
    """Average discount over the horizon for revenue spread evenly across it."""
    if annual_rate == 0:
        return 1.0
    months = max(1, round(horizon_days / 30.4375))
    return float(np.mean([(1 + annual_rate) ** -((m + 0.5) / 12) for m in range(months)]))


@dataclass(frozen=True)
class ValueInterval:
    """The 80% interval (low, high) of served values, from the manifest's `interval`: each
    value's rank band among the customers at training time (`edges`) picks the ratios of
    the ends of the 80% interval of what customers of that band went on to spend (P10 to
    P90, or 0 to P80 where more than a tenth spent nothing) to what they were predicted,
    measured on the validation window (see `service.training.pcltv.fit_interval`).
    Built once per loaded model: a request only bisects the edges."""

    edges: tuple[float, ...] = ()
    low: tuple[float, ...] = (1.0,)
    high: tuple[float, ...] = (1.0,)
    coverage: float = 0.0  # models trained without one give (value, value), covering nothing

    @classmethod
    def from_parameters(cls, parameters: dict) -> ValueInterval:
        bands = parameters.get("interval")
        if bands is None:
            return cls()
        lower, upper = bands["quantiles"]
        return cls(tuple(bands["edges"]), tuple(bands["low"]), tuple(bands["high"]), upper - lower)

    def of(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = np.asarray(values, dtype=float)
        band = np.searchsorted(np.asarray(self.edges), values, side="right")
        return values * np.asarray(self.low)[band], values * np.asarray(self.high)[band]

    def around(self, value: float) -> tuple[float, float]:
        """`of` for one value in plain floats (the API scores one customer per request)."""
        band = bisect.bisect_right(self.edges, value)
        return value * self.low[band], value * self.high[band]


def interval(values: np.ndarray, parameters: dict) -> tuple[np.ndarray, np.ndarray]:
    """The interval of each value under the manifest `parameters` (see ValueInterval)."""
    return ValueInterval.from_parameters(parameters).of(values)
