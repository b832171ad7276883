"""Which change records a rescoring produces: a pure function of the stored scores, the
last reported scores and the new ones, so every rule is table-tested."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Snapshot = dict[str, Any]

# (change type, the snapshot field whose any move is a change)
LABEL_CHANGES = (
    ("segment.changed", "segment"),
    ("churn_band.changed", "churn_band"),
    ("tier.changed", "pcltv_tier"),
)
# A pCLTV move smaller than this (currency units) is noise whatever its ratio.
PCLTV_MIN_MOVE = 1.0


@dataclass(frozen=True)
class Thresholds:
    """`scores.changed` when churn probability moved at least `churn_delta` (absolute) or
    pCLTV at least `pcltv_ratio` of its value, since the last `scores.changed`."""

    churn_delta: float = 0.05
    pcltv_ratio: float = 0.10

    def moved(self, reported: Snapshot, new: Snapshot) -> bool:
        churn = abs(new["churn_probability"] - reported["churn_probability"])
        pcltv = abs(new["pcltv"] - reported["pcltv"])
        return churn >= self.churn_delta or pcltv >= max(
            self.pcltv_ratio * abs(reported["pcltv"]), PCLTV_MIN_MOVE
        )


def transitions(
    stored: Snapshot | None, reported: Snapshot | None, new: Snapshot, thresholds: Thresholds
) -> tuple[list[tuple[str, Snapshot | None, Snapshot]], Snapshot]:
    """The (type, before, after) records and the new `reported` snapshot.

    A customer's first scores are a change of every kind, with `before` null. Label
    changes compare with the stored scores; `scores.changed` with the last reported ones
    (its `before`), so a slow drift is reported once it adds up."""
    if stored is None or reported is None:
        kinds = [kind for kind, _ in LABEL_CHANGES] + ["scores.changed"]
        return [(kind, None, new) for kind in kinds], new
    records: list[tuple[str, Snapshot | None, Snapshot]] = [
        (kind, stored, new) for kind, field in LABEL_CHANGES if stored[field] != new[field]
    ]
    if thresholds.moved(reported, new):
        records.append(("scores.changed", reported, new))
        reported = new
    return records, reported
