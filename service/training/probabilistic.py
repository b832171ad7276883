"""The probabilistic pCLTV baseline: BG/NBD purchase counts x Gamma-Gamma spend; and the
Pareto/NBD, the BG/NBD's alternative for purchase counts (`service.modeling.pareto`).

This is the model the field benchmarks pCLTV against ("buy 'til you die"), written on
numpy/scipy so that we do not depend on the unmaintained `lifetimes`/`btyd` packages.

References (equation numbers below refer to these):

* [FHL05] P. S. Fader, B. G. S. Hardie, K. L. Lee (2005), "'Counting Your Customers' the
  Easy Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284.
* [FHL08] P. S. Fader, B. G. S. Hardie, K. L. Lee (2008), "Computing P(alive) Using the
  BG/NBD Model" (note, brucehardie.com/notes/021).
* [FH13] P. S. Fader, B. G. S. Hardie (2013), "The Gamma-Gamma Model of Monetary Value"
  (note, brucehardie.com/notes/025).
* [FH05] P. S. Fader, B. G. S. Hardie (2005), "A Note on Deriving the Pareto/NBD Model and
  Related Expressions" (note, brucehardie.com/notes/009).

Data convention (that of `lifetimes.utils.summary_data_from_transaction_data`): orders are
first collapsed to purchase *days* (several orders on one day are one purchase of their
summed amount). Per customer, with time measured in *periods* of `unit_days` days:

* `frequency` x  = number of distinct purchase days - 1 (repeat purchases);
* `recency`   t_x = (last purchase day - first purchase day) / unit_days;
* `T`             = (cutoff day - first purchase day) / unit_days;
* `monetary_value` = mean amount of the repeat purchase days (the first purchase is
  excluded), 0 when x == 0.

Every fitted parameter that carries a time dimension (BG/NBD `alpha`, Pareto/NBD `alpha`
and `beta`) is in those periods,
and so are the `t` / horizon arguments of the prediction functions.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln

from service.modeling.clv import (
    BgNbdParams,
    GammaGammaParams,
    as_float_arrays,
    expected_average_spend,
    expected_purchases,
)
from service.modeling.pareto import ParetoNbdParams, log_likelihood_parts

DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12  # 30.4375, the month used by pcltv.discount_factor


# Log-parameter box for the optimiser: exp(+-12) spans 6e-6 .. 1.6e5, far beyond any
# plausible value, and keeps gammaln/betaln away from overflow during line searches.
_LOG_BOUND = 12.0
_Q_MIN = 1.001  # Gamma-Gamma q floor under q_constraint
# The Pareto/NBD likelihood is flat along (s, beta): at L-BFGS-B's default tolerance the fit
# stops while beta is still 0.2% off the CDNOW optimum (11.645 against 11.669).
_PARETO_NBD_TOLERANCES = {"ftol": 1e-12, "gtol": 1e-8}
_SCREEN_CUSTOMERS = 2_500  # sample size on which `fit_pareto_nbd` races its starts


# --------------------------------------------------------------------------------------
# RFM summary
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RfmSummary:
    """BG/NBD and Gamma-Gamma inputs, one array element per customer.

    `has_orders` is False for customers without any counted order up to the cutoff: they
    are outside the BG/NBD population (which is conditioned on a first purchase) and get
    x = t_x = T = monetary_value = 0. Such rows contribute exactly 0 to the BG/NBD
    log-likelihood, but filter them out before predicting: they are cold-start customers.
    """

    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    monetary_value: np.ndarray
    has_orders: np.ndarray
    unit_days: float

    def __len__(self) -> int:
        return len(self.frequency)


def to_day(value: object) -> int:
    """Day number of an int day ordinal, a `date`/`datetime` or a `numpy.datetime64`.

    Dates map to `date.toordinal()` (datetimes are floored to their date), so day
    ordinals passed as ints must use the same epoch as any dates they are compared with.
    """
    if isinstance(value, np.datetime64):
        value = value.astype("datetime64[D]").item()
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.toordinal()
    return int(value)  # type: ignore[call-overload]


def rfm_summary(
    orders_per_customer: Sequence[Iterable[tuple[object, float]]],
    cutoff_day: object,
    unit_days: float = 7.0,
) -> RfmSummary:
    """RFM summary from per-customer lists of `(day, net amount)` of counted orders.

    `day` and `cutoff_day` are int day ordinals or dates (see `to_day`). Orders after the
    cutoff day are ignored; orders on it count. `unit_days` is the length of one model
    period: 7 measures recency and T in weeks (the BG/NBD papers' unit), 1 in days.
    Element i of every output array is customer `orders_per_customer[i]`.
    """
    customer, day, amount = [], [], []
    for i, orders in enumerate(orders_per_customer):
        for d, a in orders:
            customer.append(i)
            day.append(to_day(d))
            amount.append(float(a))
    return rfm_summary_from_arrays(
        np.asarray(customer, dtype=np.int64),
        np.asarray(day, dtype=np.int64),
        np.asarray(amount, dtype=float),
        cutoff_day=to_day(cutoff_day),
        n_customers=len(orders_per_customer),
        unit_days=unit_days,
    )


def rfm_summary_from_arrays(
    customer_index: np.ndarray,
    day: np.ndarray,
    amount: np.ndarray,
    cutoff_day: int | np.ndarray,
    n_customers: int | None = None,
    unit_days: float = 7.0,
) -> RfmSummary:
    """Vectorised `rfm_summary` on flat order arrays (one element per order).

    `customer_index` holds integers in [0, n_customers); `cutoff_day` is a scalar or one
    day per customer. Same conventions as `rfm_summary`.
    """
    customer_index = np.asarray(customer_index, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    amount = np.asarray(amount, dtype=float)
    if n_customers is None:
        n_customers = int(customer_index.max()) + 1 if customer_index.size else 0
    cutoff = np.broadcast_to(np.asarray(cutoff_day, dtype=np.int64), (n_customers,))

    keep = day <= cutoff[customer_index]
    cust_of_day, day_of_day, amount_of_day = _collapse_to_purchase_days(
        customer_index[keep], day[keep], amount[keep]
    )
    n_days = np.bincount(cust_of_day, minlength=n_customers)
    has_orders = n_days > 0
    # Groups are sorted by (customer, day): a customer's first/last groups are its
    # first/last purchase days.
    last_group = np.cumsum(n_days) - 1
    first_group = last_group - n_days + 1
    first_day = _take(day_of_day, first_group, has_orders)
    last_day = _take(day_of_day, last_group, has_orders)
    first_amount = _take(amount_of_day, first_group, has_orders)
    total = np.bincount(cust_of_day, weights=amount_of_day, minlength=n_customers)

    frequency = np.maximum(n_days - 1, 0).astype(float)
    monetary = np.divide(
        total - first_amount, frequency, out=np.zeros(n_customers), where=frequency > 0
    )
    return RfmSummary(
        frequency=frequency,
        recency=np.where(has_orders, (last_day - first_day) / unit_days, 0.0),
        T=np.where(has_orders, (cutoff - first_day) / unit_days, 0.0),
        monetary_value=monetary,
        has_orders=has_orders,
        unit_days=float(unit_days),
    )


def _take(values: np.ndarray, index: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """values[index] where mask, 0 elsewhere (index is meaningless where not mask)."""
    out = np.zeros(mask.shape, dtype=values.dtype)
    out[mask] = values[index[mask]]
    return out


def _collapse_to_purchase_days(
    customer: np.ndarray, day: np.ndarray, amount: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum orders per (customer, day), sorted by customer then day."""
    if customer.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    order = np.lexsort((day, customer))
    customer, day, amount = customer[order], day[order], amount[order]
    starts = np.flatnonzero(np.r_[True, (customer[1:] != customer[:-1]) | (day[1:] != day[:-1])])
    return customer[starts], day[starts], np.add.reduceat(amount, starts)


# --------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------


def bgnbd_log_likelihood(
    params: BgNbdParams, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Per-customer log-likelihood, the log of [FHL05] eq. (6).

    L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
        + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x)),

    evaluated as a log-sum-exp of the two terms' logs (gammaln/betaln), which stays finite
    for frequencies in the thousands where the terms themselves under/overflow.
    """
    x, t_x, T = as_float_arrays(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    alive = betaln(a, b + x) - (r + x) * np.log(alpha + T)
    x_pos = x > 0
    # betaln(a+1, b+x-1) is only used where x > 0; b + x - 1 may be < 0 at x == 0.
    dead = np.where(
        x_pos,
        betaln(a + 1, b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    return common + np.logaddexp(alive, dead)


def fit_bgnbd(
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    penalizer: float = 0.0,
    starts: Sequence[tuple[float, float, float, float]] | None = None,
) -> BgNbdParams:
    """Maximum-likelihood BG/NBD fit (the `lifetimes.BetaGeoFitter` equivalent).

    Minimises the mean negative log-likelihood (eq. 6) plus `penalizer * (r^2 + alpha^2 +
    a^2 + b^2)` (lifetimes' L2 penalty) over log-parameters, so that positivity needs no
    constraint, with L-BFGS-B from several starts (`starts`, as (r, alpha, a, b)); the
    best optimum wins. Inputs are in model periods (see the module docstring).
    """
    x, t_x, T = as_float_arrays(frequency, recency, T)
    _check_rfm_inputs(x, t_x, T)
    if starts is None:
        scale = float(np.mean(T)) if T.size and np.mean(T) > 0 else 1.0
        starts = [(1.0, 1.0, 1.0, 1.0), (0.5, scale / 2, 0.5, 2.0), (1.0, scale, 2.0, 5.0)]

    def objective(log_params: np.ndarray) -> float:
        params = BgNbdParams(*np.exp(log_params))
        ll = bgnbd_log_likelihood(params, x, t_x, T)
        return float(-np.mean(ll) + penalizer * np.sum(np.exp(2 * log_params)))

    best = _minimise_from_starts(objective, starts)
    return BgNbdParams(*(float(v) for v in np.exp(best)))


def _check_rfm_inputs(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t_x)) and np.all(np.isfinite(T))):
        raise ValueError("frequency, recency and T must be finite")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T):
        raise ValueError("need frequency >= 0 and 0 <= recency <= T")


# --------------------------------------------------------------------------------------
# Pareto/NBD
# --------------------------------------------------------------------------------------


def pareto_nbd_log_likelihood(
    params: ParetoNbdParams, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Per-customer log-likelihood, the log of [FH05]'s likelihood:

    L = G(r+x) alpha^r beta^s / G(r) * [(alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0],

    computed as a log-sum-exp of the alive and dead terms' logs, with A0 through the
    bounded hypergeometric series of `service.modeling.pareto` (its module docstring), so
    that it stays finite for frequencies in the thousands.
    """
    x, t_x, T = as_float_arrays(frequency, recency, T)
    common, alive, dead = log_likelihood_parts(params, x, t_x, T)
    return common + np.logaddexp(alive, dead)


def fit_pareto_nbd(
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    penalizer: float = 0.0,
    starts: Sequence[tuple[float, float, float, float]] | None = None,
) -> ParetoNbdParams:
    """Maximum-likelihood Pareto/NBD fit, the same way as `fit_bgnbd`.

    Minimises the mean negative log-likelihood plus `penalizer * (r^2 + alpha^2 + s^2 +
    beta^2)` over log-parameters with L-BFGS-B from several starts (`starts`, as (r,
    alpha, s, beta)); the best optimum wins. Inputs are in model periods.

    Each evaluation sums hypergeometric series, so two savings keep a fit of tens of
    thousands of customers within seconds. Customers with the same (x, t_x, T) are
    evaluated once, weighted by their count (on a day grid most customers without repeat
    purchases collapse into a few hundred rows). And with more than `_SCREEN_CUSTOMERS`
    customers the starts race on a systematic sample of about that many (every k-th
    customer) at L-BFGS-B's default tolerance; only the winner's optimum is then refined on
    everyone. The sample's optimum lies within sampling error of the full one, in the
    same basin, which is all the starts are there to find.
    """
    x, t_x, T = as_float_arrays(frequency, recency, T)
    _check_rfm_inputs(x, t_x, T)
    if starts is None:
        scale = float(np.mean(T)) if T.size and np.mean(T) > 0 else 1.0
        starts = [(1.0, 1.0, 1.0, 1.0), (0.5, scale / 4, 0.5, scale / 4), (1.0, scale, 1.0, scale)]
    every = x.size // _SCREEN_CUSTOMERS
    if len(starts) > 1 and every >= 2:
        sample = _pareto_nbd_objective(x[::every], t_x[::every], T[::every], penalizer)
        starts = [tuple(np.exp(_minimise_from_starts(sample, starts)))]
    objective = _pareto_nbd_objective(x, t_x, T, penalizer)
    best = _minimise_from_starts(objective, starts, options=_PARETO_NBD_TOLERANCES)
    return ParetoNbdParams(*(float(v) for v in np.exp(best)))


def _pareto_nbd_objective(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray, penalizer: float
) -> Callable[[np.ndarray], float]:
    """Mean penalised negative log-likelihood over log-parameters, on unique rows."""
    rows, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    ux, ut_x, uT = rows.T.copy()
    weights = counts / x.size

    def objective(log_params: np.ndarray) -> float:
        params = ParetoNbdParams(*np.exp(log_params))
        with warnings.catch_warnings():
            # Line searches can pass alpha/beta ratios where the series hands over to
            # scipy's hyp2f1 (and warns): expected there, and not the fitted result.
            warnings.simplefilter("ignore", RuntimeWarning)
            ll = pareto_nbd_log_likelihood(params, ux, ut_x, uT)
        return float(-(weights @ ll) + penalizer * np.sum(np.exp(2 * log_params)))

    return objective


# --------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------


def gamma_gamma_log_likelihood(
    params: GammaGammaParams, frequency: np.ndarray, monetary_value: np.ndarray
) -> np.ndarray:
    """Per-customer log-likelihood of the mean spend m_x over x purchases, [FH13]:

    f(m_x | p, q, v; x) = G(px+q) / (G(px) G(q)) * v^q m_x^(px-1) x^(px) / (v + m_x x)^(px+q).
    """
    x, m = as_float_arrays(frequency, monetary_value)
    p, q, v = params.p, params.q, params.v
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(v + m * x)
    )


def fit_gamma_gamma(
    frequency: np.ndarray,
    monetary_value: np.ndarray,
    penalizer: float = 0.0,
    starts: Sequence[tuple[float, float, float]] | None = None,
    q_constraint: bool = False,
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma fit (the `lifetimes.GammaGammaFitter` equivalent).

    Uses only customers with a repeat purchase and positive mean spend (frequency > 0,
    monetary_value > 0): the model describes repeat-purchase amounts. Minimises the mean
    negative log-likelihood (`gamma_gamma_log_likelihood`) plus `penalizer * (p^2 + q^2 + v^2)` over
    log-parameters with L-BFGS-B from several starts. `q_constraint=True` (lifetimes'
    option of that name) keeps q >= 1.001 so that the population mean spend p v / (q-1),
    which `expected_average_spend` gives customers without repeat purchases, stays finite
    on heavy-tailed spend data.
    """
    x, m = as_float_arrays(frequency, monetary_value)
    use = (x > 0) & (m > 0)
    if not np.any(use):
        raise ValueError("Gamma-Gamma needs customers with frequency > 0 and spend > 0")
    x, m = x[use], m[use]
    if starts is None:
        mean = float(np.mean(m))
        starts = [(1.0, 1.0, 1.0), (2.0, 3.0, mean), (5.0, 5.0, mean)]

    def objective(log_params: np.ndarray) -> float:
        params = GammaGammaParams(*np.exp(log_params))
        ll = gamma_gamma_log_likelihood(params, x, m)
        return float(-np.mean(ll) + penalizer * np.sum(np.exp(2 * log_params)))

    lower = [None, np.log(_Q_MIN) if q_constraint else None, None]
    if q_constraint:
        starts = [(p, max(q, 2.0), v) for p, q, v in starts]
    best = _minimise_from_starts(objective, starts, lower)
    return GammaGammaParams(*(float(v) for v in np.exp(best)))


# --------------------------------------------------------------------------------------
# CLV
# --------------------------------------------------------------------------------------


def predicted_clv(
    bg: BgNbdParams,
    gg: GammaGammaParams,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    monetary_value: np.ndarray,
    horizon_periods: float,
    *,
    period_days: float,
    margin: float = 1.0,
    annual_discount_rate: float = 0.0,
    slice_days: float = DAYS_PER_MONTH,
) -> np.ndarray:
    """Expected (discounted) margin over the next `horizon_periods` periods.

    CLV = margin * E[spend | x, m_x] * sum_k d_k (E[Y(s_k)] - E[Y(s_{k-1})]),

    Expected purchases and spend are independent given the data (the Gamma-Gamma
    assumption), so their product is the expected revenue. The horizon is cut into slices
    of `slice_days` (default one month, 365.25/12 days; the last slice is shorter) with
    ends s_0 = 0 < s_1 < ... < s_K = horizon in periods, and each slice's expected
    purchases are discounted at its midpoint, d_k = (1 + annual_discount_rate) ^
    -(years from the cutoff to (s_{k-1}+s_k)/2) with years = periods * period_days / 365.25
    (the mid-month convention of `pcltv.discount_factor`). With rate 0 every d_k = 1 and
    the sum telescopes to E[Y(horizon)]: CLV = margin * E[spend] * E[Y(horizon)].
    `period_days` is the model period in days (the `unit_days` of the RFM summary).
    """
    x, t_x, T, m = as_float_arrays(frequency, recency, T, monetary_value)
    spend = expected_average_spend(gg, x, m)
    if annual_discount_rate == 0:
        purchases = expected_purchases(bg, horizon_periods, x, t_x, T)
        return margin * spend * purchases
    slice_periods = slice_days / period_days
    n_slices = max(1, int(np.ceil(horizon_periods / slice_periods - 1e-9)))
    ends = np.minimum(np.arange(1, n_slices + 1) * slice_periods, horizon_periods)
    starts = np.r_[0.0, ends[:-1]]
    years = (starts + ends) / 2 * period_days / DAYS_PER_YEAR
    factors = (1.0 + annual_discount_rate) ** -years
    cumulative = [np.zeros_like(x)] + [expected_purchases(bg, s, x, t_x, T) for s in ends]
    purchases = sum(f * (cumulative[k + 1] - cumulative[k]) for k, f in enumerate(factors))
    return margin * spend * purchases


# --------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------


def _minimise_from_starts(
    objective: Callable[[np.ndarray], float],
    starts: Sequence[Sequence[float]],
    lower: Sequence[float | None] | None = None,
    options: dict[str, float] | None = None,
) -> np.ndarray:
    """Best local optimum of `objective` (over log-parameters) from each natural start.

    `lower` optionally raises the lower bound of individual log-parameters; `options`
    are L-BFGS-B's (scipy.optimize.minimize), e.g. tighter stopping tolerances.
    """
    best_x, best_f = None, np.inf
    for start in starts:
        x0 = np.log(np.asarray(start, dtype=float))
        lows = lower if lower is not None else [None] * len(x0)
        bounds = [(-_LOG_BOUND if lo is None else lo, _LOG_BOUND) for lo in lows]
        with np.errstate(all="ignore"):
            result = minimize(objective, x0, method="L-BFGS-B", bounds=bounds, options=options)
        if np.isfinite(result.fun) and result.fun < best_f:
            best_x, best_f = result.x, result.fun
    if best_x is None:
        raise RuntimeError("likelihood optimisation failed from every start")
    return best_x
