"""Model health math: PSI against a recorded reference, reliability bins. (The database
tests of the snapshot and the route are still to come.)"""

from __future__ import annotations

import numpy as np
import pytest

from service.modeling import monitoring


def test_psi_is_about_zero_for_the_reference_itself_and_large_when_shifted():
    rng = np.random.default_rng(7)
    values = rng.gamma(2.0, 30.0, 20_000)
    values[rng.random(20_000) < 0.1] = np.nan
    recorded = monitoring.reference(values)
    assert monitoring.psi_against(recorded, values) < 1e-9
    same = rng.gamma(2.0, 30.0, 20_000)
    same[rng.random(20_000) < 0.1] = np.nan
    assert monitoring.psi_against(recorded, same) < 0.01
    assert monitoring.psi_against(recorded, same * 2) > 0.5


def test_a_zero_heavy_count_gets_a_bin_of_its_own_for_zero():
    counts = np.array([0] * 800 + [1] * 150 + [2] * 50, dtype=float)
    recorded = monitoring.reference(counts)
    assert recorded["edges"][0] == 0
    assert recorded["shares"][0] == 0.8
    assert recorded["shares"][-1] == 0  # nothing missing
    assert abs(sum(recorded["shares"]) - 1) < 1e-12


def test_reliability_bins_and_ece_recomputed_by_hand():
    p = np.array([0.05, 0.07, 0.55, 0.58, 0.95])
    y = np.array([0, 1, 1, 0, 1])
    bins = monitoring.reliability_bins(y, p)
    assert [n for _, _, n in bins] == [2, 2, 1]
    assert bins[0] == pytest.approx((0.06, 0.5, 2))
    expected_ece = (abs(1 - 0.12) + abs(1 - 1.13) + abs(1 - 0.95)) / 5
    assert abs(monitoring.expected_calibration_error(y, p) - expected_ece) < 1e-12
    assert abs(monitoring.brier(y, p) - np.mean((p - y) ** 2)) < 1e-15
