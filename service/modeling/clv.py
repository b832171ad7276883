"""BG/NBD purchase counts and Gamma-Gamma spend: the prediction side, which serving runs.

Fitting these models lives with training (`service.training.probabilistic`, whose
docstring gives the references [FHL05], [FHL08], [FH13] and the data convention: time in
model periods, x = repeat purchase days, t_x = recency, T = age).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, hyp2f1

# Series evaluation of the Gauss hypergeometric function (see `_f21_tail_over_b`).
_SERIES_RTOL = 1e-15
_MAX_SERIES_TERMS = 20_000
_SCALAR_ROWS = 8  # at most this many entries: sum in Python floats
_SERIES_CHUNK = 32


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD parameters [FHL05].

    Purchase rate lambda ~ Gamma(shape r, rate alpha) (alpha in model periods); dropout
    probability after each repeat purchase p ~ Beta(a, b).
    """

    r: float
    alpha: float
    a: float
    b: float


def probability_alive(
    params: BgNbdParams, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(customer still active at T | x, t_x, T), [FHL08]:

    P = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)),

    computed as expit(-log(odds of having dropped out)) so that large x cannot overflow.
    Customers without a repeat purchase (x == 0) are alive with probability 1: in the
    BG/NBD dropout only happens right after a repeat purchase.
    """
    x, t_x, T = as_float_arrays(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x_pos = x > 0
    log_odds_dead = (
        np.log(a)
        - np.log(np.where(x_pos, b + x - 1, 1.0))
        + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    )
    return np.where(x_pos, expit(-log_odds_dead), 1.0)


def expected_purchases(
    params: BgNbdParams,
    t: float | np.ndarray,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in the next t periods, [FHL05] eq. (10).

    E = (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x)
                              * 2F1(r+x, b+x; a+b+x-1; z)] * P(alive),
    with z = t/(alpha+T+t) and P(alive) from `probability_alive`.

    Evaluated in an equivalent, stable form. 2F1(r+x, b+x; c; z) grows like
    (1-z)^(a-1-r-x) as z -> 1 (huge for heavy buyers, cancelled by the power in front),
    and (a-1) -> 0 makes the prefactor blow up while the
    bracket cancels to 0. Euler's transformation 2F1(A,B;C;z) = (1-z)^(C-A-B)
    2F1(C-A, C-B; C; z) turns the bracket into

        1 - (1-z)^eps * 2F1(a+b-1-r, eps; c; z),   eps = a - 1, c = a+b+x-1,

    whose parameters no longer grow with x; writing 2F1(A, eps; c; z) = 1 + eps * S
    (S = `_f21_tail_over_b`) the prefactor's 1/eps cancels analytically:

        E = c * [-expm1(eps L)/eps - exp(eps L) S] * P(alive),   L = log(1 - z).

    S is summed as its power series in z (z < 1 always); scipy's hyp2f1 is only a
    fallback for z so close to 1 that the series would need > 20k terms.
    """
    x, t_x, T = as_float_arrays(frequency, recency, T)
    t = np.broadcast_to(np.asarray(t, dtype=float), x.shape)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    eps = a - 1.0
    c = a + b + x - 1.0
    z = t / (alpha + T + t)
    log1mz = np.log((alpha + T) / (alpha + T + t))
    s = _f21_tail_over_b(np.full_like(x, a + b - 1 - r), np.full_like(x, eps), c, z)
    y = eps * log1mz
    # -expm1(eps L)/eps, with its eps -> 0 limit -L.
    first = -log1mz * np.where(y == 0, 1.0, np.expm1(y) / np.where(y == 0, 1.0, y))
    return c * (first - np.exp(y) * s) * probability_alive(params, x, t_x, T)


def expected_purchases_scalar(
    params: BgNbdParams, t: float, x: float, t_x: float, T: float
) -> tuple[float, float]:
    """(`expected_purchases`, `probability_alive`) for one customer in plain floats,
    the same formulas term for term (the API scores one customer per request)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if x > 0:
        log_odds_dead = (
            math.log(a)
            - math.log(b + x - 1)
            + (r + x) * (math.log(alpha + T) - math.log(alpha + t_x))
        )
        alive = 1.0 / (1.0 + math.exp(log_odds_dead)) if log_odds_dead < 700 else 0.0
    else:
        alive = 1.0
    eps = a - 1.0
    c = a + b + x - 1.0
    z = t / (alpha + T + t)
    log1mz = math.log((alpha + T) / (alpha + T + t))
    s = _f21_tail_scalar(a + b - 1 - r, eps, c, z)
    y = eps * log1mz
    first = -log1mz * (1.0 if y == 0 else math.expm1(y) / y)
    return c * (first - math.exp(y) * s) * alive, alive


def _f21_tail_over_b(a: np.ndarray, b: np.ndarray, c: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(2F1(a, b; c; z) - 1) / b = sum_{n>=1} (a)_n (b+1)_{n-1} / ((c)_n n!) z^n.

    Dividing by b before summing keeps the b -> 0 limit (a == 1 in the BG/NBD) exact.
    Terms obey t_1 = a z / c and t_{n+1} = t_n (a+n)(b+n) z / ((c+n)(n+1)); summation
    stops once the geometric bound |t_n| / (1-z) on the remainder is below 1e-15 of the
    sum, checked once n is past |a| and |b| (no more sign changes) and either past |c| (the
    term ratio then tends to z) or such that (n+a)(n+b) <= (n+c)(n+1) from n on (every
    later ratio is at most z; it holds for every later n once it holds with a + b <= c + 1,
    being linear in n). For a customer with many orders c is large and the second happens
    within a few terms, where waiting for n > |c| summed thousands of negligible terms.
    Entries still unconverged after `_MAX_SERIES_TERMS` terms fall back to scipy.
    """
    if a.size <= _SCALAR_ROWS:
        # Serving scores one customer at a time: plain floats beat numpy per-call overhead.
        return np.array([_f21_tail_scalar(*row) for row in zip(a, b, c, z, strict=True)])
    term = a * z / c
    total = term.copy()
    active = np.flatnonzero(z > 0)
    n = 1
    while active.size and n < _MAX_SERIES_TERMS:
        # _SERIES_CHUNK terms at once (a cumulative product of the term ratios): numpy's
        # per-call overhead is paid per chunk, not per term.
        aa, bb, cc, zz = (v[active][:, None] for v in (a, b, c, z))
        steps = np.arange(n, n + _SERIES_CHUNK, dtype=float)
        ratios = (aa + steps) * (bb + steps) * zz / ((cc + steps) * (steps + 1))
        terms = term[active][:, None] * np.cumprod(ratios, axis=1)
        sums = total[active][:, None] + np.cumsum(terms, axis=1)
        index = steps + 1  # the index of each term, as the stopping rule counts them
        slope = aa + bb - cc - 1
        past_ab = index > np.maximum(np.abs(aa), np.abs(bb))
        bounded = (past_ab & (slope <= 0) & (slope * index + aa * bb - cc <= 0)) | (
            past_ab & (index > np.abs(cc))
        )
        done = bounded & (np.abs(terms) <= _SERIES_RTOL * (1 - zz) * np.abs(sums))
        finished = done.any(axis=1)
        last = np.where(finished, done.argmax(axis=1), _SERIES_CHUNK - 1)
        rows = np.arange(active.size)
        total[active] = sums[rows, last]
        term[active] = terms[rows, last]
        active = active[~finished]
        n += _SERIES_CHUNK
    if active.size:
        warnings.warn(
            f"2F1 series did not converge for {active.size} customers (z up to "
            f"{z[active].max():.6f}); using scipy.special.hyp2f1",
            RuntimeWarning,
            stacklevel=3,
        )
        total[active] = _f21_tail_over_b_scipy(a[active], b[active], c[active], z[active])
    return total


def _f21_tail_scalar(a: float, b: float, c: float, z: float) -> float:
    """`_f21_tail_over_b` for one entry, the same terms and stopping rule."""
    a, b, c, z = float(a), float(b), float(c), float(z)
    term = a * z / c
    total = term
    if z <= 0:
        return total
    limit, slope = max(abs(a), abs(b)), a + b - c - 1
    n = 1
    while n < _MAX_SERIES_TERMS:
        term = term * (a + n) * (b + n) * z / ((c + n) * (n + 1))
        total += term
        n += 1
        bounded = n > limit and ((slope <= 0 and slope * n + a * b - c <= 0) or n > abs(c))
        if bounded and abs(term) <= _SERIES_RTOL * (1 - z) * abs(total):
            return total
    warnings.warn(
        f"2F1 series did not converge (z = {z:.6f}); using scipy.special.hyp2f1",
        RuntimeWarning,
        stacklevel=4,
    )
    return float(
        _f21_tail_over_b_scipy(np.array([a]), np.array([b]), np.array([c]), np.array([z]))[0]
    )


def _f21_tail_over_b_scipy(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, z: np.ndarray
) -> np.ndarray:
    """Fallback of `_f21_tail_over_b` through scipy.special.hyp2f1 (not exact at b ~ 0)."""
    safe_b = np.where(np.abs(b) < 1e-8, np.copysign(1e-8, b + 0.0), b)
    return (hyp2f1(a, safe_b, c, z) - 1.0) / safe_b


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma spend parameters [FH13].

    Each purchase amount ~ Gamma(shape p, rate nu); per customer nu ~ Gamma(shape q,
    rate v) (v is the note's gamma). The population mean spend is p v / (q - 1), q > 1.
    """

    p: float
    q: float
    v: float


def expected_average_spend(
    params: GammaGammaParams, frequency: np.ndarray, monetary_value: np.ndarray
) -> np.ndarray:
    """E[mean spend per purchase | x, m_x], [FH13] eq. (5):

    E = (v + m_x x) p / (p x + q - 1)
      = (q-1)/(px+q-1) * (p v/(q-1)) + px/(px+q-1) * m_x,

    a credibility-weighted blend of the population mean and the customer's own mean, so
    x == 0 customers get the population mean p v / (q - 1). Needs p x + q > 1.
    """
    x, m = as_float_arrays(frequency, monetary_value)
    if np.any(params.p * x + params.q - 1 <= 0):
        raise ValueError(f"expected spend is infinite where p*x + q <= 1 (q = {params.q:.4g})")
    return _average_spend(params, x, m)


def expected_average_spend_scalar(params: GammaGammaParams, x: float, m: float) -> float:
    """`expected_average_spend` for one customer in plain floats."""
    if params.p * x + params.q - 1 <= 0:
        raise ValueError(f"expected spend is infinite where p*x + q <= 1 (q = {params.q:.4g})")
    return _average_spend(params, x, m)


def _average_spend(params: GammaGammaParams, x, m):
    return (params.v + m * x) * params.p / (params.p * x + params.q - 1)


def as_float_arrays(*arrays: object) -> tuple[np.ndarray, ...]:
    return tuple(np.atleast_1d(np.asarray(a, dtype=float)) for a in arrays)
