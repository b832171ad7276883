"""The Pareto/NBD (service.modeling.pareto, fit in service.training.probabilistic).

Checked against the published CDNOW estimates, against the model's own generative process
(a simulated population: the fit recovers the parameters, and the conditional predictions
match what the simulated customers then do), against the note's hypergeometric form and
direct quadrature of the likelihood, and against Monte Carlo for P(no purchase).
"""

from __future__ import annotations

import datetime as dt
import math
import warnings

import numpy as np
import pytest
from scipy import integrate
from scipy.special import gammaln, hyp2f1

from service.modeling import pareto
from service.modeling.pareto import ParetoNbdParams
from service.training import probabilistic as P
from tests.test_cdnow import sample_orders

# Fader, Hardie and Lee (2005), table 1, and Fader and Hardie's note 009: the Pareto/NBD on
# the CDNOW sample's 39-week calibration, time in weeks, three decimals.
CDNOW_PARETO = ParetoNbdParams(r=0.553, alpha=10.578, s=0.606, beta=11.669)
N_CUSTOMERS = 20_000
HORIZON_WEEKS = 39.0
SEED = 20240917


def test_fit_reproduces_the_published_cdnow_parameters():
    customer, day, amount, n = sample_orders()
    summary = P.rfm_summary_from_arrays(
        customer, day, amount, cutoff_day=dt.date(1997, 9, 30).toordinal(), n_customers=n
    )
    fitted = P.fit_pareto_nbd(summary.frequency, summary.recency, summary.T)
    for name in ("r", "alpha", "s", "beta"):
        # Published to three decimals; our optimum is within 0.0005 of each.
        assert getattr(fitted, name) == pytest.approx(getattr(CDNOW_PARETO, name), abs=0.002)


# --------------------------------------------------------------------------------------
# a simulated population
# --------------------------------------------------------------------------------------


def simulate_pareto_nbd(params: ParetoNbdParams, n: int, rng: np.random.Generator) -> dict:
    """Draw (x, t_x, T) and the next HORIZON_WEEKS from the Pareto/NBD process [SMC87].

    lambda ~ Gamma(r, rate alpha), mu ~ Gamma(s, rate beta), lifetime ~ Exp(mu) from the
    first purchase at 0; repeat purchases are Poisson(lambda) over (0, min(lifetime, T)],
    so x ~ Poisson(lambda min(lifetime, T)) and t_x, the largest of x uniform arrival
    times, is min(lifetime, T) * Beta(x, 1). Alive at T, the rest of the lifetime is again
    Exp(mu) (memorylessness), and the future is Poisson(lambda min(rest, horizon)).
    """
    lam = rng.gamma(params.r, 1 / params.alpha, n)
    mu = rng.gamma(params.s, 1 / params.beta, n)
    T = 39.0 - rng.uniform(0, 12, n)  # CDNOW: first purchases spread over 12 weeks
    lifetime = rng.exponential(1 / mu)
    observed = np.minimum(lifetime, T)
    x = rng.poisson(lam * observed)
    t_x = np.where(x > 0, observed * rng.beta(np.maximum(x, 1), 1), 0.0)
    alive = lifetime > T
    rest = rng.exponential(1 / mu)
    future = np.where(alive, rng.poisson(lam * np.minimum(rest, HORIZON_WEEKS)), 0)
    return {"x": x.astype(float), "t_x": t_x, "T": T, "alive": alive, "future": future}


@pytest.fixture(scope="module")
def population() -> dict:
    pop = simulate_pareto_nbd(CDNOW_PARETO, N_CUSTOMERS, np.random.default_rng(SEED))
    pop["fit"] = P.fit_pareto_nbd(pop["x"], pop["t_x"], pop["T"])
    return pop


GROUPS = [(0, 0), (1, 2), (3, math.inf)]


def _groups(x: np.ndarray):
    for lo, hi in GROUPS:
        yield (lo, hi), (x >= lo) & (x <= hi)


def test_fit_recovers_known_parameters(population):
    fit = population["fit"]
    # 12 seeds gave relative standard deviations of r 1.6%, alpha 1.8%, s 14%, beta 25%
    # and s/beta (the mean dropout rate) 10%; the bands are ~4 sigma. s and beta are
    # weakly identified on 39 weeks (few customers are seen dropping out).
    assert fit.r == pytest.approx(CDNOW_PARETO.r, rel=0.08)
    assert fit.alpha == pytest.approx(CDNOW_PARETO.alpha, rel=0.08)
    assert fit.s == pytest.approx(CDNOW_PARETO.s, rel=0.6)
    assert fit.beta == pytest.approx(CDNOW_PARETO.beta, rel=1.0)
    assert fit.s / fit.beta == pytest.approx(CDNOW_PARETO.s / CDNOW_PARETO.beta, rel=0.4)


def test_fit_reaches_the_maximum_likelihood(population):
    x, t_x, T = population["x"], population["t_x"], population["T"]
    fitted = P.pareto_nbd_log_likelihood(population["fit"], x, t_x, T).mean()
    assert fitted >= P.pareto_nbd_log_likelihood(CDNOW_PARETO, x, t_x, T).mean()
    truth = tuple(vars(CDNOW_PARETO).values())
    from_truth = P.fit_pareto_nbd(x, t_x, T, starts=[truth])
    assert fitted >= P.pareto_nbd_log_likelihood(from_truth, x, t_x, T).mean() - 1e-9


def test_penalizer_shrinks_the_parameters(population):
    x, t_x, T = population["x"], population["t_x"], population["T"]
    start = tuple(vars(population["fit"]).values())
    penalized = P.fit_pareto_nbd(x, t_x, T, penalizer=0.01, starts=[start])
    squares = [sum(v**2 for v in vars(p).values()) for p in (penalized, population["fit"])]
    assert squares[0] < squares[1]


def _z_score(observed: np.ndarray, expected: np.ndarray, variance: np.ndarray) -> float:
    return abs(observed.sum() - expected.sum()) / math.sqrt(variance.sum())


def test_conditional_predictions_match_the_simulated_customers(population):
    """With the true parameters each prediction is the exact conditional expectation given
    the history, so by frequency group the simulated totals differ from the predicted
    ones only by sampling error: z-scores below 4."""
    x, t_x, T = population["x"], population["t_x"], population["T"]
    future, alive = population["future"], population["alive"]
    expected = pareto.expected_purchases(CDNOW_PARETO, HORIZON_WEEKS, x, t_x, T)
    p_alive = pareto.probability_alive(CDNOW_PARETO, x, t_x, T)
    p_none = pareto.probability_no_purchase(CDNOW_PARETO, HORIZON_WEEKS, x, t_x, T)
    for group, g in _groups(x):
        residual = future[g] - expected[g]
        assert _z_score(future[g], expected[g], residual.var() * np.ones(g.sum())) < 4, group
        assert _z_score(alive[g], p_alive[g], p_alive[g] * (1 - p_alive[g])) < 4, group
        none = future[g] == 0
        assert _z_score(none, p_none[g], p_none[g] * (1 - p_none[g])) < 4, group
    # The groups are informative: the predictions are not just the population means.
    assert p_alive[x == 0].mean() < 0.8 < p_alive[(x >= 3) & (T - t_x < 2)].mean()


def test_fitted_predictions_match_the_simulated_future(population):
    x, t_x, T, future = population["x"], population["t_x"], population["T"], population["future"]
    fit = population["fit"]
    expected = pareto.expected_purchases(fit, HORIZON_WEEKS, x, t_x, T)
    p_none = pareto.probability_no_purchase(fit, HORIZON_WEEKS, x, t_x, T)
    for group, g in _groups(x):
        assert expected[g].sum() == pytest.approx(future[g].sum(), rel=0.15), group
        assert p_none[g].mean() == pytest.approx((future[g] == 0).mean(), abs=0.03), group


# --------------------------------------------------------------------------------------
# formulas
# --------------------------------------------------------------------------------------

PARAM_GRID = [
    CDNOW_PARETO,  # alpha < beta
    ParetoNbdParams(0.8, 20.0, 1.3, 4.0),  # alpha > beta
    ParetoNbdParams(0.5, 8.0, 1.0, 8.0),  # alpha == beta, s == 1
    ParetoNbdParams(2.0, 1.5, 0.3, 60.0),
]
HISTORIES = [(0, 0.0, 30.0), (1, 5.0, 30.0), (4, 20.5, 38.0), (9, 1.5, 2.0), (3, 10.0, 10.0)]


def _note_likelihood(params: ParetoNbdParams, x: float, t_x: float, T: float) -> float:
    """[FH05]'s likelihood as printed, with A0 through scipy's hyp2f1 (small x only)."""
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    m = r + s + x
    if alpha >= beta:
        big, b2 = alpha, s + 1
    else:
        big, b2 = beta, r + x

    def term(tau: float) -> float:
        return hyp2f1(m, b2, m + 1, abs(alpha - beta) / (big + tau)) / (big + tau) ** m

    a0 = term(t_x) - term(T)
    front = math.exp(gammaln(r + x) - gammaln(r)) * alpha**r * beta**s
    return front * (1 / ((alpha + T) ** (r + x) * (beta + T) ** s) + s / m * a0)


def _likelihood_by_quadrature(params: ParetoNbdParams, x: float, t_x: float, T: float) -> float:
    """Alive term plus the dropout time integrated out numerically (module docstring)."""
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    front = math.exp(gammaln(r + x) - gammaln(r)) * alpha**r * beta**s
    dead, _ = integrate.quad(
        lambda u: (alpha + u) ** -(r + x) * (beta + u) ** -(s + 1), t_x, T, epsabs=0, epsrel=1e-13
    )
    return front * ((alpha + T) ** -(r + x) * (beta + T) ** -s + s * dead)


@pytest.mark.parametrize("params", PARAM_GRID)
@pytest.mark.parametrize("x,t_x,T", HISTORIES)
def test_log_likelihood_matches_the_note_and_quadrature(params, x, t_x, T):
    ll = P.pareto_nbd_log_likelihood(params, [x], [t_x], [T])[0]
    assert ll == pytest.approx(math.log(_note_likelihood(params, x, t_x, T)), rel=1e-10)
    assert ll == pytest.approx(math.log(_likelihood_by_quadrature(params, x, t_x, T)), rel=1e-10)


def test_log_likelihood_is_the_same_on_the_vectorised_path():
    """More than a handful of rows take the numpy series, fewer the plain-float one."""
    x, t_x, T = (np.array(v, dtype=float) for v in zip(*HISTORIES * 4, strict=True))
    for params in PARAM_GRID:
        many = P.pareto_nbd_log_likelihood(params, x, t_x, T)
        one_by_one = [
            P.pareto_nbd_log_likelihood(params, [h[0]], [h[1]], [h[2]])[0] for h in HISTORIES
        ]
        np.testing.assert_allclose(many, np.tile(one_by_one, 4), rtol=1e-13)


@pytest.mark.parametrize("params", PARAM_GRID)
def test_outlook_scalar_agrees_with_the_vectorised_functions(params):
    x, t_x, T = (np.array(v, dtype=float) for v in zip(*HISTORIES * 4, strict=True))
    for t in (1.0, 39.0, 520.0):
        expected = pareto.expected_purchases(params, t, x, t_x, T)
        alive = pareto.probability_alive(params, x, t_x, T)
        for i in range(len(x)):
            e, a = pareto.outlook_scalar(params, t, x[i], t_x[i], T[i])
            assert isinstance(e, float) and isinstance(a, float)
            assert e == pytest.approx(expected[i], rel=1e-12)
            assert a == pytest.approx(alive[i], rel=1e-12)


def test_probability_alive_edges():
    for params in PARAM_GRID:
        # A purchase at the cutoff: certainly alive.
        assert pareto.probability_alive(params, [3.0], [10.0], [10.0])[0] == 1.0
        p = pareto.probability_alive(params, [0.0, 2.0, 2.0], [0.0, 5.0, 25.0], [30.0] * 3)
        assert np.all((p > 0) & (p < 1))
        assert p[1] < p[2]  # a more recent last purchase


def test_expected_purchases_is_continuous_at_s_equal_1():
    at_one = pareto.expected_purchases(PARAM_GRID[2], 39.0, [2.0], [20.0], [30.0])[0]
    for s in (1 - 1e-9, 1 + 1e-9):
        near = ParetoNbdParams(0.5, 8.0, s, 8.0)
        assert pareto.expected_purchases(near, 39.0, [2.0], [20.0], [30.0])[0] == pytest.approx(
            at_one, rel=1e-7
        )


def test_alpha_equal_to_beta_is_the_limit_of_both_cases():
    x, t_x, T = np.array([0.0, 2.0, 7.0]), np.array([0.0, 5.0, 30.0]), np.array([30.0, 30.0, 38.0])
    equal = ParetoNbdParams(0.5, 8.0, 0.7, 8.0)
    for beta in (8.0 * (1 - 1e-9), 8.0 * (1 + 1e-9)):
        near = ParetoNbdParams(0.5, 8.0, 0.7, beta)
        for f in (P.pareto_nbd_log_likelihood, pareto.probability_alive):
            np.testing.assert_allclose(f(equal, x, t_x, T), f(near, x, t_x, T), rtol=1e-7)
        np.testing.assert_allclose(
            pareto.probability_no_purchase(equal, 39.0, x, t_x, T),
            pareto.probability_no_purchase(near, 39.0, x, t_x, T),
            rtol=1e-7,
        )


@pytest.mark.parametrize("params", PARAM_GRID)
def test_heavy_buyers_and_long_histories_stay_finite(params):
    """x = 2,000 over T = 500 weeks: the note's 2F1 alone would overflow for alpha < beta."""
    # 4 copies of each row: the vectorised series (more than a handful of rows).
    x, T = np.full(12, 2000.0), np.full(12, 500.0)
    t_x = np.tile([0.0, 250.0, 500.0], 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ll = P.pareto_nbd_log_likelihood(params, x, t_x, T)
        alive = pareto.probability_alive(params, x, t_x, T)
        expected = pareto.expected_purchases(params, 52.0, x, t_x, T)
        none = pareto.probability_no_purchase(params, 52.0, x, t_x, T)
        scalar = [pareto.outlook_scalar(params, 52.0, 2000.0, b, 500.0) for b in t_x[:3]]
    for values in (ll, alive, expected, none):
        assert np.all(np.isfinite(values))
    assert alive[0] < 1e-100 and alive[2] == 1.0  # 2,000 purchases, then silence for 500 weeks
    assert np.all((none >= 0) & (none <= 1))
    # Alive and buying ~4 a week, only dying first avoids a purchase: ~ mu / lambda.
    assert none[0] == pytest.approx(1.0) and 0 < none[2] < 1e-3
    assert expected[2] == pytest.approx(scalar[2][0], rel=1e-12)
    assert [a for _e, a in scalar] == pytest.approx(list(alive[:3]), rel=1e-12, abs=1e-300)


FAR_APART = [ParetoNbdParams(0.5, 200.0, 0.7, 0.05), ParetoNbdParams(0.5, 0.05, 0.7, 200.0)]


@pytest.mark.parametrize("params", FAR_APART)
def test_rates_orders_of_magnitude_apart_fall_back_to_scipy(params):
    """z = 1 - 0.05/200 at tau = 0 would need ~150k series terms: scipy's hyp2f1 steps in
    at once (no series run first, so no warning)."""
    histories = [(0, 0.0, 30.0), (2, 0.01, 30.0), (5, 0.001, 10.0)]
    x, t_x, T = (np.array(v, dtype=float) for v in zip(*histories, strict=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ll = P.pareto_nbd_log_likelihood(params, x, t_x, T)
    expected = [math.log(_likelihood_by_quadrature(params, *h)) for h in histories]
    np.testing.assert_allclose(ll, expected, rtol=1e-10)
