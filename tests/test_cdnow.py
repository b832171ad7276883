"""Our probabilistic models on CDNOW, the field's public benchmark (tests/data/cdnow)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pytest

from service.training import probabilistic as P

DATA = Path(__file__).parent / "data" / "cdnow"
SAMPLE_SHA256 = "6fae10155c0b0ba363c2c386e30f77990d22328220efd862a5edd1443420d94a"
# Fader, Hardie and Lee (2005), the sample's 39-week calibration, time in weeks.
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def sample_orders() -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(customer index, day ordinal, dollars) per row of the 2,357-customer sample."""
    raw = (DATA / "CDNOW_sample.txt").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SAMPLE_SHA256
    ids: dict[str, int] = {}
    customer, day, amount = [], [], []
    for line in raw.decode().splitlines():
        _master, sample_id, date, _cds, dollars = line.split()
        customer.append(ids.setdefault(sample_id, len(ids)))
        day.append(dt.date(int(date[:4]), int(date[4:6]), int(date[6:])).toordinal())
        amount.append(float(dollars))
    return np.array(customer), np.array(day), np.array(amount), len(ids)


def test_bgnbd_reproduces_the_published_cdnow_parameters():
    customer, day, amount, n = sample_orders()
    assert n == 2357 and len(day) == 6919
    summary = P.rfm_summary_from_arrays(
        customer, day, amount, cutoff_day=dt.date(1997, 9, 30).toordinal(), n_customers=n
    )
    assert summary.has_orders.all()  # everyone bought in the first quarter
    fitted = P.fit_bgnbd(summary.frequency, summary.recency, summary.T)
    for name, published in PUBLISHED.items():
        # The paper reports three decimals.
        assert getattr(fitted, name) == pytest.approx(published, abs=0.0015), name
