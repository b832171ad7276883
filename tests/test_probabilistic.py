"""The probabilistic pCLTV baseline (BG/NBD + Gamma-Gamma) and the CLV helpers/metrics.

Parameter recovery runs on populations simulated from the models' own generative
processes with the CDNOW estimates (BG/NBD: Fader, Hardie & Lee 2005, table 1; Gamma-Gamma:
Fader & Hardie 2013), 10,000 customers observed for 27-39 weeks. Tolerances come from
30 seeds: the relative standard deviation of the estimates was r 2.4%, alpha 3.9%,
a 10%, b 12%, a/(a+b) 3%, total predicted purchases vs simulated 3%; Gamma-Gamma p 8%,
q 3%, v 10%. a and b are weakly identified on 39 weeks (the paper's own standard errors
are 23% and 29% of the estimates), hence their wider bands, set at ~4 sigma.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from scipy import integrate
from scipy.special import betaln, hyp2f1

from service.features.vector import MODEL_FEATURES
from service.modeling import clv
from service.modeling.monitoring import expected_calibration_error
from service.modeling.pcltv import Probabilistic
from service.training import probabilistic as P
from service.training.clv_math import (
    average_order_value,
    classification_report,
    regression_report,
    simple_clv,
)

CDNOW_BG = clv.BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
CDNOW_GG = clv.GammaGammaParams(p=6.25, q=3.74, v=15.44)
N_CUSTOMERS = 10_000
HORIZON_WEEKS = 39.0
SEED = 20240601


# --------------------------------------------------------------------------------------
# simulation
# --------------------------------------------------------------------------------------


def simulate_bgnbd(params: clv.BgNbdParams, n: int, rng: np.random.Generator) -> dict:
    """Draw (x, t_x, T) and the purchases of the next HORIZON_WEEKS from the BG/NBD process.

    First purchase at 0, then Poisson(lambda) purchases; after each repeat purchase the
    customer drops out with probability p, so the dropout happens after repeat purchase
    N ~ Geometric(p). With K ~ Poisson(lambda T) arrivals in (0, T], x = min(N, K), the
    customer is alive at T iff N > K, and given K the arrival times are sorted uniforms,
    so t_x = T * Beta(x, K - x + 1). Memorylessness makes the future of an alive customer
    min(Geometric(p), Poisson(lambda t)) purchases.
    """
    lam = rng.gamma(params.r, 1 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    T = 39.0 - rng.uniform(0, 12, n)  # CDNOW: first purchases spread over 12 weeks
    N = rng.geometric(p)
    K = rng.poisson(lam * T)
    x = np.minimum(N, K)
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), K - x + 1), 0.0)
    alive = N > K
    future = np.where(alive, np.minimum(rng.geometric(p), rng.poisson(lam * HORIZON_WEEKS)), 0)
    return {"x": x.astype(float), "t_x": t_x, "T": T, "alive": alive, "future": future}


def simulate_spend(params: clv.GammaGammaParams, x: np.ndarray, rng: np.random.Generator):
    """Mean repeat spend m_x and true mean spend p/nu, per the Gamma-Gamma process.

    nu ~ Gamma(q, rate v); each purchase ~ Gamma(p, rate nu), so the mean of x purchases
    is Gamma(p x, rate x nu).
    """
    nu = rng.gamma(params.q, 1 / params.v, len(x))
    xs = np.maximum(x, 1)
    m = np.where(x > 0, rng.gamma(params.p * xs, 1 / (xs * nu)), 0.0)
    return m, params.p / nu


@pytest.fixture(scope="module")
def population() -> dict:
    rng = np.random.default_rng(SEED)
    pop = simulate_bgnbd(CDNOW_BG, N_CUSTOMERS, rng)
    pop["m"], pop["true_spend"] = simulate_spend(CDNOW_GG, pop["x"], rng)
    pop["bg"] = P.fit_bgnbd(pop["x"], pop["t_x"], pop["T"])
    pop["gg"] = P.fit_gamma_gamma(pop["x"], pop["m"])
    return pop


def _rel(estimate: float, truth: float) -> float:
    return abs(estimate / truth - 1)


# --------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------


def test_bgnbd_recovers_known_parameters(population):
    bg = population["bg"]
    assert _rel(bg.r, CDNOW_BG.r) < 0.20
    assert _rel(bg.alpha, CDNOW_BG.alpha) < 0.25
    assert _rel(bg.a, CDNOW_BG.a) < 0.40
    assert _rel(bg.b, CDNOW_BG.b) < 0.50
    mean_dropout = bg.a / (bg.a + bg.b)
    assert _rel(mean_dropout, CDNOW_BG.a / (CDNOW_BG.a + CDNOW_BG.b)) < 0.15


def test_bgnbd_fit_reaches_the_maximum_likelihood(population):
    x, t_x, T = population["x"], population["t_x"], population["T"]
    fitted = P.bgnbd_log_likelihood(population["bg"], x, t_x, T).mean()
    assert fitted >= P.bgnbd_log_likelihood(CDNOW_BG, x, t_x, T).mean()
    from_truth = P.fit_bgnbd(x, t_x, T, starts=[(CDNOW_BG.r, CDNOW_BG.alpha, CDNOW_BG.a, 2.4)])
    assert fitted >= P.bgnbd_log_likelihood(from_truth, x, t_x, T).mean() - 1e-7


def test_penalizer_shrinks_the_parameters(population):
    x, t_x, T = population["x"], population["t_x"], population["T"]
    start = tuple(vars(population["bg"]).values())
    penalized = P.fit_bgnbd(x, t_x, T, penalizer=0.01, starts=[start])
    squares = [sum(v**2 for v in vars(params).values()) for params in (penalized, population["bg"])]
    assert squares[0] < squares[1]
    gg = P.fit_gamma_gamma(population["x"], population["m"], penalizer=0.01)
    assert sum(v**2 for v in vars(gg).values()) < sum(v**2 for v in vars(population["gg"]).values())


def test_expected_purchases_match_the_simulated_future(population):
    x, t_x, T, future = population["x"], population["t_x"], population["T"], population["future"]
    predicted = clv.expected_purchases(population["bg"], HORIZON_WEEKS, x, t_x, T)
    assert _rel(predicted.sum(), future.sum()) < 0.10
    with_truth = clv.expected_purchases(CDNOW_BG, HORIZON_WEEKS, x, t_x, T)
    assert _rel(with_truth.sum(), future.sum()) < 0.10
    # Also by frequency group (the paper's figure 4 check): x = 0, 1, 2-4, 5+.
    for lo, hi in [(0, 0), (1, 1), (2, 4), (5, math.inf)]:
        group = (x >= lo) & (x <= hi)
        assert _rel(predicted[group].sum(), future[group].sum()) < 0.2, (lo, hi)


def test_probability_alive_is_calibrated(population):
    x, t_x, T, alive = population["x"], population["t_x"], population["T"], population["alive"]
    p_alive = clv.probability_alive(population["bg"], x, t_x, T)
    assert abs(p_alive.mean() - alive.mean()) < 0.02
    assert np.all(p_alive[x == 0] == 1.0)
    low = (x > 0) & (p_alive < 0.5)
    assert alive[low].mean() < 0.5 < alive[p_alive > 0.9].mean()


def _naive_likelihood(params: clv.BgNbdParams, x: float, t_x: float, T: float) -> float:
    """[FHL05] eq. (6), term by term, for small x."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    gamma_part = math.gamma(r + x) * alpha**r / math.gamma(r)
    beta = math.exp(betaln(a, b + x) - betaln(a, b))
    out = beta * gamma_part / (alpha + T) ** (r + x)
    if x > 0:
        dead = math.exp(betaln(a + 1, b + x - 1) - betaln(a, b))
        out += dead * gamma_part / (alpha + t_x) ** (r + x)
    return out


@pytest.mark.parametrize("x,t_x,T", [(0, 0, 30), (1, 5, 30), (4, 20.5, 38), (9, 1.5, 2.0)])
def test_log_likelihood_matches_equation_6(x, t_x, T):
    ll = P.bgnbd_log_likelihood(CDNOW_BG, [x], [t_x], [T])[0]
    assert ll == pytest.approx(math.log(_naive_likelihood(CDNOW_BG, x, t_x, T)), rel=1e-10)


def test_log_likelihood_stays_finite_for_heavy_buyers():
    ll = P.bgnbd_log_likelihood(CDNOW_BG, [5000.0, 20000.0], [300.0, 390.0], [301.0, 400.0])
    assert np.all(np.isfinite(ll))
    assert np.all(np.isfinite(clv.probability_alive(CDNOW_BG, [20000.0], [390.0], [400.0])))


def _expected_purchases_by_integral(params, t, x, t_x, T) -> float:
    """E[Y(t)] = P(alive) E_{p ~ Beta(a, b+x)}[(1 - ((alpha+T)/(alpha+T+p t))^(r+x)) / p].

    The integral the hypergeometric closed form (eq. 10) comes from, integrated with
    QUADPACK's algebraic-singularity weight p^(a-1) (1-p)^(b+x-1).
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b

    def g(p: float) -> float:
        if p == 0:
            return (r + x) * t / (alpha + T)
        return -math.expm1(-(r + x) * math.log1p(p * t / (alpha + T))) / p

    value, _ = integrate.quad(g, 0, 1, weight="alg", wvar=(a - 1, b + x - 1), limit=200)
    alive = clv.probability_alive(params, [x], [t_x], [T])[0]
    return alive * value / math.exp(betaln(a, b + x))


PARAM_GRID = [
    CDNOW_BG,
    clv.BgNbdParams(0.5, 30.0, 1.0, 3.0),  # a == 1: eq. (10) is 0/0 as written
    clv.BgNbdParams(0.5, 30.0, 1.0 + 1e-9, 3.0),
    clv.BgNbdParams(2.0, 1.0, 3.5, 0.4),
    clv.BgNbdParams(0.3, 0.5, 0.2, 0.5),
]
HISTORIES = [
    (39, 0, 0, 39),
    (39, 2, 30, 38),
    (52, 10, 20, 30),
    (100, 200, 50, 51),
    (365, 0, 0, 0),
]


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("params", PARAM_GRID, ids=lambda p: f"a={p.a}")
def test_expected_purchases_equals_the_integral_representation(params):
    for t, x, t_x, T in HISTORIES:
        got = clv.expected_purchases(params, t, [x], [t_x], [T])[0]
        want = _expected_purchases_by_integral(params, t, x, t_x, T)
        assert got == pytest.approx(want, rel=1e-7), (t, x, t_x, T)


@pytest.mark.parametrize(
    "t,x,t_x,T", [(39, 0, 0, 39), (39, 2, 30, 38), (52, 10, 20, 30), (5, 3000, 300, 301)]
)
def test_expected_purchases_equals_equation_10_with_scipy_hyp2f1(t, x, t_x, T):
    r, alpha, a, b = CDNOW_BG.r, CDNOW_BG.alpha, CDNOW_BG.a, CDNOW_BG.b
    z = t / (alpha + T + t)
    f21 = hyp2f1(r + x, b + x, a + b + x - 1, z)
    bracket = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * f21
    alive = clv.probability_alive(CDNOW_BG, [x], [t_x], [T])[0]
    want = (a + b + x - 1) / (a - 1) * bracket * alive
    assert clv.expected_purchases(CDNOW_BG, t, [x], [t_x], [T])[0] == pytest.approx(want, rel=1e-10)


def test_expected_purchases_basic_properties():
    x, t_x, T = np.array([0.0, 3.0, 3.0]), np.array([0.0, 10.0, 30.0]), np.array([30.0] * 3)
    assert np.all(clv.expected_purchases(CDNOW_BG, 0.0, x, t_x, T) == 0)
    short, long = (clv.expected_purchases(CDNOW_BG, t, x, t_x, T) for t in (10.0, 50.0))
    assert np.all(long > short)
    # Same frequency, more recent last purchase -> more likely alive -> more purchases.
    assert short[2] > short[1]


def test_series_falls_back_to_scipy_when_it_cannot_converge(monkeypatch):
    x, t_x, T = np.array([0.0, 2.0]), np.array([0.0, 30.0]), np.array([39.0, 38.0])
    exact = clv.expected_purchases(CDNOW_BG, 39.0, x, t_x, T)
    monkeypatch.setattr(clv, "_MAX_SERIES_TERMS", 3)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        fallback = clv.expected_purchases(CDNOW_BG, 39.0, x, t_x, T)
    np.testing.assert_allclose(fallback, exact, rtol=1e-8)


# --------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------


def test_gamma_gamma_recovers_known_parameters(population):
    gg = population["gg"]
    assert _rel(gg.p, CDNOW_GG.p) < 0.35
    assert _rel(gg.q, CDNOW_GG.q) < 0.20
    assert _rel(gg.v, CDNOW_GG.v) < 0.40
    mean = gg.p * gg.v / (gg.q - 1)
    assert _rel(mean, CDNOW_GG.p * CDNOW_GG.v / (CDNOW_GG.q - 1)) < 0.10


def test_expected_average_spend_is_close_to_the_true_mean_spend(population):
    x, m, truth = population["x"], population["m"], population["true_spend"]
    spend = clv.expected_average_spend(population["gg"], x, m)
    buyers = x > 0
    assert _rel(spend[buyers].sum(), truth[buyers].sum()) < 0.05
    assert _rel(spend[~buyers].mean(), truth[~buyers].mean()) < 0.10  # population mean
    # Shrinkage towards the population mean beats the customer's own average.
    assert np.mean((spend - truth)[buyers] ** 2) < np.mean((m - truth)[buyers] ** 2)


@pytest.mark.parametrize("x", [1, 3, 12])
def test_gamma_gamma_density_integrates_to_one(x):
    def density(m: float) -> float:
        return math.exp(P.gamma_gamma_log_likelihood(CDNOW_GG, [x], [m])[0])

    total, _ = integrate.quad(density, 0, np.inf, limit=200)
    assert total == pytest.approx(1.0, abs=1e-6)


def test_expected_average_spend_needs_q_above_one():
    with pytest.raises(ValueError):
        clv.expected_average_spend(clv.GammaGammaParams(2.0, 0.8, 10.0), [0.0], [0.0])


def test_q_constraint_keeps_the_population_mean_finite():
    # Heavy-tailed spend (true q = 0.7 < 1): the free fit lands below 1, the constrained
    # fit on the boundary, and customers without repeat purchases get a finite spend.
    rng = np.random.default_rng(3)
    x = rng.integers(1, 6, 3000).astype(float)
    m, _ = simulate_spend(clv.GammaGammaParams(p=3.0, q=0.7, v=5.0), x, rng)
    assert P.fit_gamma_gamma(x, m).q < 1
    constrained = P.fit_gamma_gamma(x, m, q_constraint=True)
    assert constrained.q >= 1.001 - 1e-9
    assert np.isfinite(clv.expected_average_spend(constrained, [0.0], [0.0])).all()


# --------------------------------------------------------------------------------------
# CLV
# --------------------------------------------------------------------------------------


def test_undiscounted_clv_is_purchases_times_spend_times_margin(population):
    x, t_x, T, m = population["x"], population["t_x"], population["T"], population["m"]
    bg, gg = population["bg"], population["gg"]
    value = P.predicted_clv(bg, gg, x, t_x, T, m, 52.0, period_days=7, margin=0.3)
    want = 0.3 * clv.expected_purchases(bg, 52.0, x, t_x, T) * clv.expected_average_spend(gg, x, m)
    np.testing.assert_allclose(value, want, rtol=1e-12)


def test_discounted_clv_discounts_each_month_at_its_midpoint():
    x, t_x, T, m = [4.0], [20.0], [30.0], [25.0]
    horizon = 365.25 / 7  # one year, in weeks
    value = P.predicted_clv(
        CDNOW_BG, CDNOW_GG, x, t_x, T, m, horizon, period_days=7, annual_discount_rate=0.12
    )[0]
    month = 365.25 / 12 / 7
    purchases = [clv.expected_purchases(CDNOW_BG, k * month, x, t_x, T)[0] for k in range(13)]
    want = (
        sum(1.12 ** -((k + 0.5) / 12) * (purchases[k + 1] - purchases[k]) for k in range(12))
        * clv.expected_average_spend(CDNOW_GG, x, m)[0]
    )
    assert value == pytest.approx(want, rel=1e-9)
    undiscounted = P.predicted_clv(CDNOW_BG, CDNOW_GG, x, t_x, T, m, horizon, period_days=7)[0]
    assert undiscounted * 1.12**-1 < value < undiscounted


def test_daily_small_buyer_is_worth_more_than_an_old_one_off_big_buyer():
    cutoff = dt.date(2024, 6, 30)
    daily = [(cutoff - dt.timedelta(days=d), 5.00) for d in range(60)]
    one_off = [(dt.date(2023, 7, 1), 200.00)]
    rfm = P.rfm_summary([daily, one_off], cutoff, unit_days=7)
    assert rfm.frequency.tolist() == [59, 0]
    assert rfm.monetary_value.tolist() == [5.0, 0.0]
    history = (rfm.frequency, rfm.recency, rfm.T, rfm.monetary_value)
    value = P.predicted_clv(
        CDNOW_BG, CDNOW_GG, *history, 52.0, period_days=7, annual_discount_rate=0.1
    )
    # ~573 vs ~6.7: ~114 expected purchases of ~5.22, vs 0.2 of the population mean 35.2.
    assert value[0] > 50 * value[1] > 0


# --------------------------------------------------------------------------------------
# RFM summary
# --------------------------------------------------------------------------------------


def test_rfm_summary_follows_the_lifetimes_conventions():
    orders = [
        [(100, 10.0), (107, 20.0), (107, 5.0), (121, 30.0), (130, 99.0)],  # 130 > cutoff
        [(110, 40.0)],
        [],
        [(128, 7.0), (100, 1.0)],  # unsorted input
    ]
    rfm = P.rfm_summary(orders, cutoff_day=128, unit_days=7)
    # Customer 0: purchase days 100, 107 (25.0 in two orders), 121 -> 2 repeat days.
    np.testing.assert_allclose(rfm.frequency, [2, 0, 0, 1])
    np.testing.assert_allclose(rfm.recency, [3.0, 0.0, 0.0, 4.0])
    np.testing.assert_allclose(rfm.T, [4.0, 18 / 7, 0.0, 4.0])
    np.testing.assert_allclose(rfm.monetary_value, [27.5, 0.0, 0.0, 7.0])
    assert rfm.has_orders.tolist() == [True, True, False, True]
    in_days = P.rfm_summary(orders, cutoff_day=128, unit_days=1)
    np.testing.assert_allclose(in_days.T, rfm.T * 7)
    np.testing.assert_allclose(in_days.frequency, rfm.frequency)


def test_rfm_summary_accepts_dates_and_per_customer_cutoffs():
    jan = dt.date(2024, 1, 1)
    by_date = P.rfm_summary(
        [[(jan, 1.0), (np.datetime64("2024-01-08"), 2.0)]], dt.datetime(2024, 1, 15, 18), 7
    )
    np.testing.assert_allclose([by_date.frequency[0], by_date.recency[0], by_date.T[0]], [1, 1, 2])
    rfm = P.rfm_summary_from_arrays(
        customer_index=np.array([0, 0, 1, 1]),
        day=np.array([0, 10, 0, 10]),
        amount=np.array([1.0, 2.0, 3.0, 4.0]),
        cutoff_day=np.array([5, 20]),
        unit_days=1,
    )
    np.testing.assert_allclose(rfm.frequency, [0, 1])
    np.testing.assert_allclose(rfm.T, [5, 20])
    empty = P.rfm_summary_from_arrays(np.array([]), np.array([]), np.array([]), 0, n_customers=2)
    assert empty.has_orders.tolist() == [False, False] and len(empty) == 2


# --------------------------------------------------------------------------------------
# clv_math
# --------------------------------------------------------------------------------------


def test_worked_examples_from_the_docs():
    assert average_order_value(10_000, 2_000) == 5
    assert simple_clv(5, 2, 104) == 1_040
    assert math.isnan(average_order_value(0, 0))


def test_regression_report_on_perfect_predictions():
    y = np.arange(1.0, 11.0)
    report = regression_report(y, y)
    assert report["mae"] == 0 and report["rmse"] == 0 and report["aggregate_error"] == 0
    assert report["spearman"] == pytest.approx(1.0)
    assert report["top_decile_capture"] == pytest.approx(10 / 55)
    assert report["top_decile_capture"] == report["top_decile_capture_ideal"]


def test_regression_report_by_hand():
    report = regression_report([1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 3.0, 5.0])
    assert report["mae"] == pytest.approx(0.5)
    assert report["rmse"] == pytest.approx(math.sqrt(0.5))
    assert report["aggregate_error"] == pytest.approx(0.2)
    assert report["top_decile_capture"] == pytest.approx(0.4)  # ceil(0.4) = 1 customer
    assert report["spearman"] == pytest.approx(0.9486832980505138)  # ties averaged
    assert regression_report([4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0])["spearman"] == -1


def test_classification_report_by_hand():
    report = classification_report([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert report["roc_auc"] == pytest.approx(0.75)
    assert report["pr_auc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert report["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert report["ece"] == pytest.approx((0.1 + 0.4 + 0.65 + 0.2) / 4)
    assert math.isnan(classification_report([1, 1], [0.2, 0.9])["roc_auc"])


def test_expected_calibration_error_of_calibrated_probabilities():
    # Bins whose positive rate equals their mean probability: ECE exactly 0.
    p = np.array([0.25] * 4 + [0.75] * 4 + [1.0] * 2)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0, 1, 1])
    assert expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(0)
    p = rng.uniform(size=200_000)
    y = rng.uniform(size=p.size) < p
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, np.clip(p + 0.2, 0, 1)) > 0.1


def test_the_median_wait_to_the_next_order_matches_simulated_buyers():
    """Probabilistic.outlook's wait: with the purchase rate of an active buyer distributed
    Gamma(r + x, alpha + T) (weeks), the median of exponential waits at sampled rates."""
    model = Probabilistic(
        clv.BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426),
        clv.GammaGammaParams(p=6.25, q=3.74, v=15.44),
        horizon_days=182,
    )
    row = np.full(len(MODEL_FEATURES), np.nan, dtype=np.float32)
    column = {name: i for i, name in enumerate(MODEL_FEATURES)}
    x, gap_days, recency_days = 4, 20.0, 10.0
    row[column["orders_total"]] = x + 1
    row[column["avg_days_between_orders"]] = gap_days
    row[column["recency_days"]] = recency_days
    row[column["aov"]] = 30.0
    outlook = model.outlook(row)
    T = (gap_days * x + recency_days) / 7
    rng = np.random.default_rng(7)
    rates = rng.gamma(shape=0.243 + x, scale=1 / (4.414 + T), size=400_000)
    waits = rng.exponential(1 / rates) * 7
    assert outlook["next_order_days"] == pytest.approx(float(np.median(waits)), rel=0.01)
    assert 0 < outlook["p_alive"] <= 1 and outlook["expected_orders"] > 0
    never = np.full(len(MODEL_FEATURES), np.nan, dtype=np.float32)
    never[column["orders_total"]] = 0
    assert model.outlook(never) == {
        "expected_orders": None,
        "p_alive": None,
        "next_order_days": None,
    }
