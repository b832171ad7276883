"""The numbers model health is judged by, defined once for training (which records each
model's reference distributions in its manifest) and serving (which compares the stored
scores with them and checks calibration against what happened).

Binning of a reference: the deciles of the non-missing values, deduplicated, as
right-closed edges: bin 0 holds x <= e0, bin i holds e(i-1) < x <= e(i), the last
x > e(k-1); one more bin holds the missing values (NaN: no orders, never stated). The
edges are observed values, so a zero-heavy count gets a bin of its own for zero and
fewer than ten bins, and a constant feature two (the value, above it) plus missing.

PSI = sum over bins of (a - e) ln(a / e), the shares e of the reference and a of now,
each floored at PSI_FLOOR so an empty bin counts as a small share rather than infinity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

QUANTILES = tuple(k / 10 for k in range(1, 10))
PSI_FLOOR = 1e-4
PROBABILITY_BINS = 10


def _floats(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).ravel()


def bin_edges(values) -> list[float]:
    present = _floats(values)
    present = present[~np.isnan(present)]
    if not present.size:
        return []
    return np.unique(np.quantile(present, QUANTILES, method="lower")).tolist()


def bin_shares(values, edges: Sequence[float]) -> list[float]:
    """Share of `values` in each bin of `edges`, the missing bin last (see the module)."""
    x = _floats(values)
    missing = np.isnan(x)
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), x[~missing], side="left")
    counts = [*np.bincount(index, minlength=len(edges) + 1).tolist(), int(missing.sum())]
    return [c / len(x) for c in counts] if len(x) else [0.0] * len(counts)


def reference(values) -> dict:
    """A distribution as a manifest records it: bin edges and the share in each bin."""
    edges = bin_edges(values)
    return {"edges": edges, "shares": bin_shares(values, edges)}


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_against(recorded: dict, values) -> float:
    """PSI of `values` against a recorded reference, binned by the reference's edges."""
    return psi(recorded["shares"], bin_shares(values, recorded["edges"]))


def probability_bin(p, bins: int = PROBABILITY_BINS) -> np.ndarray:
    """Equal-width bins of [0, 1]: bin k holds k/bins <= p < (k+1)/bins, p == 1 the last."""
    return np.clip((_floats(p) * bins).astype(int), 0, bins - 1)


def reliability_bins(y, p, bins: int = PROBABILITY_BINS) -> list[tuple[float, float, int]]:
    """(mean predicted, observed rate, count) per non-empty probability bin, lowest first."""
    y, p = _floats(y), _floats(p)
    index = probability_bin(p, bins)
    return [
        (float(p[index == b].mean()), float(y[index == b].mean()), int((index == b).sum()))
        for b in range(bins)
        if (index == b).any()
    ]


def expected_calibration_error(y, p, bins: int = PROBABILITY_BINS) -> float:
    """sum_k (n_k / n) |mean(y in bin k) - mean(p in bin k)|, empty bins skipped."""
    y, p = _floats(y), _floats(p)
    index = probability_bin(p, bins)
    gap = np.abs(
        np.bincount(index, weights=y, minlength=bins)
        - np.bincount(index, weights=p, minlength=bins)
    )
    # |sum(y) - sum(p)| / n per bin == (n_k / n) |mean(y) - mean(p)|.
    return float(np.sum(gap) / len(p)) if len(p) else math.nan


def brier(y, p) -> float:
    y, p = _floats(y), _floats(p)
    return float(np.mean((p - y) ** 2)) if len(p) else math.nan
