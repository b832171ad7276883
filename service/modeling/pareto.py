"""Pareto/NBD purchase counts: the prediction side, which serving runs.

The Pareto/NBD [SMC87] is the BG/NBD's older sibling: purchases while alive are Poisson
with rate lambda ~ Gamma(shape r, rate alpha), and the lifetime is exponential with rate
mu ~ Gamma(shape s, rate beta), independent of lambda, so a customer can drop out at any
time, not only right after a purchase. Fitting lives with training
(`service.training.probabilistic.fit_pareto_nbd`, same data convention: time in model
periods, x = repeat purchase days, t_x = recency, T = age).

References:

* [SMC87] D. C. Schmittlein, D. G. Morrison, R. Colombo (1987), "Counting Your Customers:
  Who Are They and What Will They Do Next?", Management Science 33(1), 1-24.
* [FH05] P. S. Fader, B. G. S. Hardie (2005), "A Note on Deriving the Pareto/NBD Model and
  Related Expressions" (note, brucehardie.com/notes/009).

Everything here rests on one integral. For given (lambda, mu) the likelihood of (x, t_x,
T) is lambda^x e^-(lambda+mu)T (alive at T) plus the dropout times tau in (t_x, T],
lambda^x e^-lambda tau mu e^-mu tau d tau. Averaging over the two gammas with
E[lambda^x e^-lambda u] = G(r+x)/G(r) alpha^r (alpha+u)^-(r+x) and E[mu e^-mu u] =
s beta^s (beta+u)^-(s+1) turns the dead part into s * (J(t_x) - J(T)), with

    J(tau) = int_tau^inf (A+u)^-p (B+u)^-q du,   here A = alpha, p = r+x, B = beta, q = s+1.

Substituting y = (A+tau)/(A+u) gives, for A >= B and z = (A-B)/(A+tau),
J = (A+tau)^-(p+q-1) 2F1(p+q-1, q; p+q; z) / (p+q-1): [FH05]'s A0 term, whose other case
(A < B) is the same with the roles of (A, p) and (B, q) swapped. Euler's transformation
2F1(a, b; c; z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z) makes the first parameter 1:

    J = (A+tau)^-p (B+tau)^(1-q) 2F1(1, p; p+q; z) / (p+q-1)    (A >= B),

a series with positive terms whose ratios (p+n) z / (p+q+n) are below z < 1: nothing in it
grows with x, so (unlike the note's form, whose 2F1 behaves like ((beta+tau)/(alpha+tau))^
(r+x) when alpha < beta) it is bounded by 1/(1-z), and the powers are taken in log space.
The same J, with other (A, p, B, q), gives the probability of no purchase in a coming
window in closed form (`probability_no_purchase`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, gammaln, hyp2f1

from service.modeling.clv import as_float_arrays

# 2F1(1, b; c; z) series (see `_f21_one`).
_SERIES_RTOL = 1e-16
_MAX_SERIES_TERMS = 20_000
# Beyond this z the series needs over a thousand terms (about 37 / (1 - z)): scipy's
# transformations are cheaper there, and a fit that wanders into such parameters (a young
# cohort with no evidence of dropout) would otherwise spend a minute summing.
_SCIPY_FROM_Z = 0.97
_CHECK_EVERY = 8  # terms between convergence checks of the vectorised series
_SCALAR_ROWS = 8  # at most this many entries: sum in Python floats


@dataclass(frozen=True)
class ParetoNbdParams:
    """Pareto/NBD parameters [SMC87].

    Purchase rate while alive lambda ~ Gamma(shape r, rate alpha); dropout rate mu ~
    Gamma(shape s, rate beta); alpha and beta are in model periods.
    """

    r: float
    alpha: float
    s: float
    beta: float


def log_likelihood_parts(
    params: ParetoNbdParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(common, alive, dead): the per-customer log-likelihood is common + log(e^alive +
    e^dead), [FH05]'s likelihood with the A0 term as s (J(t_x) - J(T)) (module docstring).

    common = log(G(r+x) alpha^r beta^s / G(r)); alive = log((alpha+T)^-(r+x) (beta+T)^-s),
    the customer alive at T; dead = log(s (J(t_x) - J(T))), dropped out in (t_x, T]
    (-inf when t_x == T). Shared by the fit (training) and P(alive) (here).
    """
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    common = gammaln(r + x) - gammaln(r) + r * math.log(alpha) + s * math.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)

    # Customers without repeat purchases (x = t_x = 0, often most of them) share J(t_x),
    # which has the slowest series (z is largest at tau = 0): evaluate it once. The other
    # J(t_x) and every J(T) go through one vectorised series.
    p = r + x
    varied = (x != 0) | (t_x != 0)
    log_j = _log_tail_integral(
        alpha, np.concatenate([p[varied], p]), beta, s + 1.0, np.concatenate([t_x[varied], T])
    )
    n_varied = np.count_nonzero(varied)
    at_tx = np.empty_like(x)
    at_tx[varied] = log_j[:n_varied]
    if n_varied < x.size:
        at_tx[~varied] = _log_tail_integral_scalar(alpha, r, beta, s + 1.0, 0.0)
    at_T = log_j[n_varied:]
    # J decreases in tau; the clip keeps rounding at t_x ~ T from a log of a negative.
    with np.errstate(divide="ignore"):
        dead = math.log(s) + at_tx + np.log(-np.expm1(np.minimum(at_T - at_tx, 0.0)))
    return common, alive, dead


def probability_alive(
    params: ParetoNbdParams, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(customer still alive at T | x, t_x, T), [FH05]: the alive term's share of the
    likelihood, expit(alive - dead) of `log_likelihood_parts` (1 when t_x == T)."""
    x, t_x, T = as_float_arrays(frequency, recency, T)
    _common, alive, dead = log_likelihood_parts(params, x, t_x, T)
    return expit(alive - dead)


def expected_purchases(
    params: ParetoNbdParams,
    t: float | np.ndarray,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in (T, T+t], [FH05]'s conditional expectation:

    E = (r+x) (beta+T) / ((alpha+T) (s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)] P(alive).

    Alive at T, the posterior of (lambda, mu) is Gamma(r+x, alpha+T) x Gamma(s, beta+T)
    and E[Y(t) | lambda, mu] = lambda (1 - e^-mu t) / mu. The bracket over (s-1) is
    written -expm1(-(s-1) L) / (s-1), L = log1p(t/(beta+T)), exact at s == 1 (limit L).
    """
    x, t_x, T = as_float_arrays(frequency, recency, T)
    t = np.broadcast_to(np.asarray(t, dtype=float), x.shape)
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    L = np.log1p(t / (beta + T))
    y = (s - 1.0) * L
    lifetime = L * np.where(y == 0, 1.0, -np.expm1(-y) / np.where(y == 0, 1.0, y))
    alive = probability_alive(params, x, t_x, T)
    return (r + x) / (alpha + T) * (beta + T) * lifetime * alive


def probability_no_purchase(
    params: ParetoNbdParams,
    t: float | np.ndarray,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """P(no purchase in (T, T+t] | x, t_x, T), in closed form (no quadrature).

    A dead customer buys nothing. Alive at T with rates (lambda, mu), no purchase in t
    has probability mu/(lambda+mu) + lambda/(lambda+mu) e^-(lambda+mu)t (the dropout comes
    first, or neither comes within t). Alive, the posterior is lambda ~ Gamma(r', a) x
    mu ~ Gamma(s, b) with r' = r+x, a = alpha+T, b = beta+T. Writing each fraction as an
    integral, lambda/(lambda+mu) e^-(lambda+mu)t = int_t^inf lambda e^-(lambda+mu)u du
    (and likewise mu/(lambda+mu) from 0), the posterior means factorise into

        E[mu/(lambda+mu)]              = s a^r' b^s int_0^inf (b+u)^-(s+1) (a+u)^-r' du,
        E[lambda/(lambda+mu) e^-(..)t] = r' a^r' b^s int_t^inf (a+u)^-(r'+1) (b+u)^-s du,

    the integral J of the module docstring (from T and from T+t once u is shifted by T;
    the two means add up to 1 at t = 0). So

        P = (1 - P(alive)) + P(alive) (E[mu/(lambda+mu)] + E[lambda/(lambda+mu) e^-(..)t]),

    a sum of positive terms, each evaluated in log space. tests/test_pareto_nbd.py checks
    it against Monte Carlo over the posterior rates and against a simulated population.
    """
    x, t_x, T = as_float_arrays(frequency, recency, T)
    t = np.broadcast_to(np.asarray(t, dtype=float), x.shape)
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    _common, alive, dead = log_likelihood_parts(params, x, t_x, T)
    rx = r + x
    log_scale = rx * np.log(alpha + T) + s * np.log(beta + T)  # log(a^r' b^s)
    dropout_first = np.exp(
        math.log(s) + log_scale + _log_tail_integral(beta, s + 1.0, alpha, rx, T)
    )
    neither_within_t = np.exp(
        np.log(rx) + log_scale + _log_tail_integral(alpha, rx + 1.0, beta, s, T + t)
    )
    p_alive = expit(alive - dead)
    return expit(dead - alive) + p_alive * (dropout_first + neither_within_t)


def outlook_scalar(
    params: ParetoNbdParams, t: float, x: float, t_x: float, T: float
) -> tuple[float, float]:
    """(`expected_purchases`, `probability_alive`) for one customer in plain floats, the
    same formulas term for term (the API scores one customer per request)."""
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    x, t_x, T, t = float(x), float(t_x), float(T), float(t)
    alive = -(r + x) * math.log(alpha + T) - s * math.log(beta + T)
    at_tx = _log_tail_integral_scalar(alpha, r + x, beta, s + 1.0, t_x)
    at_T = _log_tail_integral_scalar(alpha, r + x, beta, s + 1.0, T)
    gap = -math.expm1(min(at_T - at_tx, 0.0))
    if gap > 0:
        log_odds_dead = math.log(s) + at_tx + math.log(gap) - alive
        p_alive = 1.0 / (1.0 + math.exp(log_odds_dead)) if log_odds_dead < 700 else 0.0
    else:
        p_alive = 1.0
    L = math.log1p(t / (beta + T))
    y = (s - 1.0) * L
    lifetime = L * (1.0 if y == 0 else -math.expm1(-y) / y)
    return (r + x) / (alpha + T) * (beta + T) * lifetime * p_alive, p_alive


def _log_tail_integral(
    alpha: float, p: float | np.ndarray, beta: float, q: float | np.ndarray, tau: np.ndarray
) -> np.ndarray:
    """log J = log int_tau^inf (alpha+u)^-p (beta+u)^-q du (p, q > 0, p + q > 1), vectorised:

    J = (alpha+tau)^-p (beta+tau)^(1-q) 2F1(1, p; p+q; (alpha-beta)/(alpha+tau)) / (p+q-1)
    if alpha >= beta, and with the roles of (alpha, p) and (beta, q) swapped otherwise
    (module docstring). alpha == beta gives z = 0, 2F1 = 1 and J = (alpha+tau)^-(p+q-1) /
    (p+q-1). Integrals from tau over (alpha+T+u), (beta+T+u) are this one from T + tau.
    """
    p, q, tau = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (p, q, tau)))
    log_a, log_b = np.log(alpha + tau), np.log(beta + tau)
    if alpha >= beta:
        powers = -p * log_a + (1 - q) * log_b
        f21 = _f21_one(p, p + q, (alpha - beta) / (alpha + tau))
    else:
        powers = (1 - p) * log_a - q * log_b
        f21 = _f21_one(q, p + q, (beta - alpha) / (beta + tau))
    return powers + np.log(f21) - np.log(p + q - 1)


def _log_tail_integral_scalar(alpha: float, p: float, beta: float, q: float, tau: float) -> float:
    """`_log_tail_integral` for one entry, in plain floats."""
    log_a, log_b = math.log(alpha + tau), math.log(beta + tau)
    if alpha >= beta:
        powers = -p * log_a + (1 - q) * log_b
        f21 = _f21_one_scalar(p, p + q, (alpha - beta) / (alpha + tau))
    else:
        powers = (1 - p) * log_a - q * log_b
        f21 = _f21_one_scalar(q, p + q, (beta - alpha) / (beta + tau))
    return powers + math.log(f21) - math.log(p + q - 1)


def _f21_one(b: np.ndarray, c: np.ndarray, z: np.ndarray) -> np.ndarray:
    """2F1(1, b; c; z) = sum_{n>=0} (b)_n / (c)_n z^n for 0 < b < c and 0 <= z < 1.

    Every term is positive and the term ratios (b+n) z / (c+n) stay below z, so after a
    term t_n the rest is below t_n z / (1-z): summation stops once that is below 1e-16 of
    the sum (checked every few terms). Entries with z above `_SCIPY_FROM_Z` (alpha and
    beta far apart) go to scipy.special.hyp2f1 at once (summed after all where it
    overflows), and any that would still need
    more than `_MAX_SERIES_TERMS` terms fall back to it, with a warning.
    """
    if z.size <= _SCALAR_ROWS:
        # Serving scores one customer at a time: plain floats beat numpy per-call overhead.
        return np.array([_f21_one_scalar(*row) for row in zip(b, c, z, strict=True)])
    total = np.ones_like(z)
    far = z > _SCIPY_FROM_Z
    if far.any():
        total[far] = hyp2f1(1.0, b[far], c[far], z[far])
        # scipy overflows where the series would still converge (heavy buyers): sum those.
        far[far] = np.isfinite(total[far]) & (total[far] > 0)
    active = np.flatnonzero((z > 0) & ~far)
    bb, cc, zz = b[active], c[active], z[active]
    term, sums = np.ones_like(zz), np.ones_like(zz)
    ratio, scratch = np.empty_like(zz), np.empty_like(zz)
    tol = _SERIES_RTOL * (1 - zz) / zz
    n = 0
    while active.size and n < _MAX_SERIES_TERMS:
        # In place: the fit evaluates this on every customer a few hundred times, and
        # fresh temporaries for each term cost more than the arithmetic.
        for _ in range(_CHECK_EVERY):
            np.add(bb, n, out=ratio)
            np.add(cc, n, out=scratch)
            ratio /= scratch
            ratio *= zz
            term *= ratio
            sums += term
            n += 1
        done = term <= tol * sums
        if done.any():
            total[active[done]] = sums[done]
            keep = ~done
            active, bb, cc, zz, tol = active[keep], bb[keep], cc[keep], zz[keep], tol[keep]
            term, sums = term[keep], sums[keep]
            ratio, scratch = ratio[keep], scratch[keep]
    if active.size:
        warnings.warn(
            f"2F1 series did not converge for {active.size} entries (z up to "
            f"{zz.max():.6f}); using scipy.special.hyp2f1",
            RuntimeWarning,
            stacklevel=3,
        )
        total[active] = hyp2f1(1.0, bb, cc, zz)
    return total


def _f21_one_scalar(b: float, c: float, z: float) -> float:
    """`_f21_one` for one entry, the same terms and stopping rule (checked every term)."""
    b, c, z = float(b), float(c), float(z)
    if z <= 0:
        return 1.0
    if z > _SCIPY_FROM_Z:
        value = float(hyp2f1(1.0, b, c, z))
        if math.isfinite(value) and value > 0:
            return value
    term = total = 1.0
    tol = _SERIES_RTOL * (1 - z) / z
    for n in range(_MAX_SERIES_TERMS):
        term *= (b + n) / (c + n) * z
        total += term
        if term <= tol * total:
            return total
    warnings.warn(
        f"2F1 series did not converge (z = {z:.6f}); using scipy.special.hyp2f1",
        RuntimeWarning,
        stacklevel=4,
    )
    return float(hyp2f1(1.0, b, c, z))
