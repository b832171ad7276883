"""Prior acceptance rates by segment, and Beta-Binomial shrinkage toward them.

Until the propensity model has been trained on enough `offer_shown` →
`offer_accepted` history, an offer's acceptance propensity for a customer is
its observed acceptance rate in the customer's segment shrunk toward the
segment's prior:

    posterior mean = (accepted + strength · prior) / (shown + strength)

which is the mean of Beta(strength · prior + accepted,
strength · (1 − prior) + shown − accepted): a Beta prior worth `strength`
pseudo-impressions at rate `prior`, updated with the observed counts. With no
history it is the prior; with much history it is the observed rate.

The priors are conservative marketing rules of thumb: engaged, recent buyers
accept more often than lapsed ones. They only matter while history is thin.

| segment             | prior | why                                        |
|---------------------|-------|--------------------------------------------|
| Champions           | 0.12  | recent, frequent, high spend               |
| Loyal Customers     | 0.10  | frequent buyers                            |
| Can't Lose Them     | 0.06  | were top buyers, now slipping: win-back    |
| Potential Loyalists | 0.08  | recent, growing frequency                  |
| New Customers       | 0.06  | one recent order, still engaged            |
| Promising           | 0.05  | recent, low frequency                      |
| Need Attention      | 0.05  | average on all three                       |
| At Risk             | 0.04  | used to buy, not recently                  |
| About To Sleep      | 0.03  | below average, fading                      |
| Hibernating         | 0.02  | long gone, low value                       |
| Lost                | 0.01  | lowest recency and frequency               |
| (unknown / none)    | 0.03  | cold start: no segment yet                 |
"""

from __future__ import annotations

from dataclasses import dataclass

# One prior per segment name (`service.vocabulary.SEGMENTS`; checked by the tests).
SEGMENT_PRIORS: dict[str, float] = {
    "Champions": 0.12,
    "Loyal Customers": 0.10,
    "Can't Lose Them": 0.06,
    "Potential Loyalists": 0.08,
    "New Customers": 0.06,
    "Promising": 0.05,
    "Need Attention": 0.05,
    "At Risk": 0.04,
    "About To Sleep": 0.03,
    "Hibernating": 0.02,
    "Lost": 0.01,
}
DEFAULT_PRIOR = 0.03
# The prior weighs as much as this many impressions.
PRIOR_STRENGTH = 20.0
# Below this many `offer_shown` events with a known outcome, the propensity
# model is not trained and the shrunk segment rates are used instead.
MIN_SHOWN_FOR_MODEL = 1000


def prior_rate(segment: str | None) -> float:
    """The prior acceptance rate of a segment (`DEFAULT_PRIOR` when unknown or None)."""
    return SEGMENT_PRIORS.get(segment, DEFAULT_PRIOR) if segment else DEFAULT_PRIOR


@dataclass(frozen=True)
class BetaPosterior:
    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def variance(self) -> float:
        total = self.alpha + self.beta
        return self.alpha * self.beta / (total * total * (total + 1))


def posterior(
    accepted: int, shown: int, prior: float, strength: float = PRIOR_STRENGTH
) -> BetaPosterior:
    """Beta posterior of the acceptance rate after `accepted` of `shown` impressions."""
    if shown < 0 or accepted < 0:
        raise ValueError("accepted and shown must be >= 0")
    if accepted > shown:
        raise ValueError(f"accepted ({accepted}) cannot exceed shown ({shown})")
    if not 0.0 < prior < 1.0:
        raise ValueError("prior must be within (0, 1)")
    if strength <= 0:
        raise ValueError("strength must be > 0")
    return BetaPosterior(strength * prior + accepted, strength * (1 - prior) + shown - accepted)


def shrunk_rate(accepted: int, shown: int, prior: float, strength: float = PRIOR_STRENGTH) -> float:
    """(accepted + strength · prior) / (shown + strength)."""
    return posterior(accepted, shown, prior, strength).mean


def segment_propensity(
    segment: str | None, accepted: int = 0, shown: int = 0, strength: float = PRIOR_STRENGTH
) -> float:
    """Acceptance propensity for a customer of `segment` from that segment's counts."""
    return shrunk_rate(accepted, shown, prior_rate(segment), strength)
