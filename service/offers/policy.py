"""Next-best-offer decision policy: pure functions, no database, no HTTP.

One call of `decide` turns a customer's context, the offer catalog and a
propensity estimate into a `Decision`:

1. **Control group.** A stable share of customers (`control_share`) never gets
   an offer, so uplift can be measured against them. Membership is a hash of
   the customer id (and a salt), so a customer is always in the same group.
   Anonymous callers (no customer id) are assigned per decision with the rng.
2. **Frequency cap.** At most `frequency_cap` offers per customer in any
   `frequency_window_days` days; a capped customer gets none.
3. **Eligibility**, in this order (the reason names the filter that removed the
   last candidate): active window, segment / value tier / churn band
   targeting and the offer's minimum days since this customer's last offer
   (`no_eligible_offer`); explicit consent (`true`, null is not consent) for
   the offer's channel (`no_consent`); remaining budget covers the cost
   (`budget_exhausted`); expected value propensity × value − cost above
   `min_expected_value` (`no_positive_value`: making no offer is worth 0).
4. **Epsilon-greedy choice** among the k remaining offers: greedy is the highest
   expected value (ties broken by offer id); with probability epsilon the
   choice is uniform over all k. The logged `action_probability` is the
   probability that this policy picks the chosen offer in this context,
   (1 − ε)·[chosen is greedy] + ε/k, and `probabilities` holds the whole
   distribution, for off-policy evaluation.

Decisions without randomness (control, capped, nothing eligible) have
`action_probability` 1.0: given the customer, that outcome was certain.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from service.config import NboSettings

Group = Literal["treatment", "control", "none"]

# Why a decision came out as it did (`reason`, surfaced as `nbo_reason`).
BEST_EXPECTED_VALUE = "best_expected_value"  # offer made: the greedy choice
EXPLORED = "explored"  # offer made: picked by exploration
CONTROL_GROUP = "control_group"
FREQUENCY_CAP = "frequency_cap"
NO_ELIGIBLE_OFFER = "no_eligible_offer"
NO_CONSENT = "no_consent"
BUDGET_EXHAUSTED = "budget_exhausted"
NO_POSITIVE_VALUE = "no_positive_value"
REASONS: tuple[str, ...] = (
    BEST_EXPECTED_VALUE,
    EXPLORED,
    CONTROL_GROUP,
    FREQUENCY_CAP,
    NO_ELIGIBLE_OFFER,
    NO_CONSENT,
    BUDGET_EXHAUSTED,
    NO_POSITIVE_VALUE,
)


@dataclass(frozen=True)
class OfferSpec:
    """An offer as the policy sees it (catalog row minus bookkeeping)."""

    offer_id: str
    name: str
    channel: str
    value: Decimal
    cost: Decimal
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    segments: frozenset[str] | None = None  # None: any
    value_tiers: frozenset[str] | None = None
    churn_bands: frozenset[str] | None = None
    min_days_since_last_offer: int = 0
    budget: Decimal | None = None  # total cost budget; None: unlimited
    spent: Decimal = Decimal(0)

    def is_live(self, now: datetime) -> bool:
        """Inside its active window (start inclusive, end exclusive)."""
        return (self.starts_at is None or self.starts_at <= now) and (
            self.ends_at is None or now < self.ends_at
        )

    def budget_allows(self) -> bool:
        return self.budget is None or self.budget - self.spent >= self.cost

    def targets(self, segment: str | None, tier: str | None, band: str | None) -> bool:
        return all(
            allowed is None or (have is not None and have in allowed)
            for allowed, have in (
                (self.segments, segment),
                (self.value_tiers, tier),
                (self.churn_bands, band),
            )
        )


@dataclass(frozen=True)
class PastDecision:
    """One of this customer's earlier decisions (offer_id None: no offer was made)."""

    decided_at: datetime
    offer_id: str | None


@dataclass(frozen=True)
class CustomerContext:
    customer_id: str | None
    now: datetime
    segment: str | None = None
    value_tier: str | None = None
    churn_band: str | None = None
    consent: Mapping[str, bool | None] = field(default_factory=dict)
    history: Sequence[PastDecision] = ()

    def offers_made(self) -> list[datetime]:
        """When this customer was made an offer, up to now (future entries ignored)."""
        return [
            d.decided_at
            for d in self.history
            if d.offer_id is not None and d.decided_at <= self.now
        ]

    def last_offer_at(self) -> datetime | None:
        return max(self.offers_made(), default=None)


@dataclass(frozen=True)
class Decision:
    offer: OfferSpec | None
    group: Group
    reason: str
    propensity: float | None = None
    expected_value: float | None = None
    action_probability: float = 1.0
    explored: bool = False
    # Distribution over the offers the choice was made among (offer id -> probability).
    probabilities: Mapping[str, float] = field(default_factory=dict)
    # The offer a control-group customer would have got (greedy), for uplift analysis.
    counterfactual_offer_id: str | None = None

    @property
    def offer_id(self) -> str | None:
        return self.offer.offer_id if self.offer else None


Propensity = Callable[[OfferSpec], float]


def control_bucket(customer_id: str, salt: str) -> float:
    """A uniform number in [0, 1) fixed by (salt, customer id)."""
    digest = hashlib.sha256(f"{salt}\x00{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_control_group(customer_id: str | None, settings: NboSettings, rng: random.Random) -> bool:
    if settings.control_share <= 0:
        return False
    if customer_id is None:
        return rng.random() < settings.control_share
    return control_bucket(customer_id, settings.control_salt) < settings.control_share


def frequency_capped(context: CustomerContext, settings: NboSettings) -> bool:
    """True when one more offer would exceed the cap within the trailing window."""
    since = context.now - timedelta(days=settings.frequency_window_days)
    recent = sum(1 for at in context.offers_made() if at > since)
    return recent >= settings.frequency_cap


def history_window(settings: NboSettings, offers: Iterable[OfferSpec]) -> timedelta:
    """How far back the caller must load a customer's decisions for `decide` to be exact."""
    days = max([settings.frequency_window_days, *(o.min_days_since_last_offer for o in offers)])
    return timedelta(days=days)


def cooled_down(offer: OfferSpec, last_offer_at: datetime | None, now: datetime) -> bool:
    """At least the offer's `min_days_since_last_offer` since the customer's last offer."""
    needed = timedelta(days=offer.min_days_since_last_offer)
    return last_offer_at is None or now - last_offer_at >= needed


def eligible_offers(
    context: CustomerContext, offers: Iterable[OfferSpec]
) -> tuple[list[OfferSpec], str | None]:
    """The offers this customer may get now, or [] and the reason none may."""
    last = context.last_offer_at()
    filters: tuple[tuple[str, Callable[[OfferSpec], bool]], ...] = (
        (
            NO_ELIGIBLE_OFFER,
            lambda o: (
                o.is_live(context.now)
                and o.targets(context.segment, context.value_tier, context.churn_band)
                and cooled_down(o, last, context.now)
            ),
        ),
        (NO_CONSENT, lambda o: context.consent.get(o.channel) is True),
        (BUDGET_EXHAUSTED, OfferSpec.budget_allows),
    )
    remaining = list(offers)
    for reason, keep in filters:
        remaining = [o for o in remaining if keep(o)]
        if not remaining:
            return [], reason
    return remaining, None


def clamp_probability(value: float) -> float:
    """Propensities outside [0, 1] are clamped; NaN counts as 0 (never worth offering)."""
    value = float(value)
    if math.isnan(value):
        return 0.0
    return min(max(value, 0.0), 1.0)


@dataclass(frozen=True)
class Scored:
    offer: OfferSpec
    propensity: float
    expected_value: float


def score_offers(offers: Iterable[OfferSpec], propensity: Propensity) -> list[Scored]:
    """Each offer with its propensity and expected value, best first (ties: offer id)."""
    scored = []
    for offer in offers:
        p = clamp_probability(propensity(offer))
        scored.append(Scored(offer, p, p * float(offer.value) - float(offer.cost)))
    scored.sort(key=lambda s: (-s.expected_value, s.offer.offer_id))
    return scored


def choice_probabilities(k: int, epsilon: float) -> list[float]:
    """Epsilon-greedy distribution over k options ranked best first."""
    return [(1.0 - epsilon) * (i == 0) + epsilon / k for i in range(k)]


def decide(
    context: CustomerContext,
    offers: Iterable[OfferSpec],
    propensity: Propensity,
    settings: NboSettings,
    rng: random.Random,
) -> Decision:
    """The next-best-offer decision for one customer (see the module docstring)."""
    offers = list(offers)
    if in_control_group(context.customer_id, settings, rng):
        return Decision(
            None,
            "control",
            CONTROL_GROUP,
            counterfactual_offer_id=_greedy_offer_id(context, offers, propensity, settings),
        )
    if frequency_capped(context, settings):
        return Decision(None, "none", FREQUENCY_CAP)
    eligible, reason = eligible_offers(context, offers)
    if not eligible:
        return Decision(None, "none", reason or NO_ELIGIBLE_OFFER)
    ranked = [
        s
        for s in score_offers(eligible, propensity)
        if s.expected_value > settings.min_expected_value
    ]
    if not ranked:
        return Decision(None, "none", NO_POSITIVE_VALUE)
    distribution = choice_probabilities(len(ranked), settings.epsilon)
    explored = rng.random() < settings.epsilon
    index = rng.randrange(len(ranked)) if explored else 0
    chosen = ranked[index]
    return Decision(
        chosen.offer,
        "treatment",
        EXPLORED if explored else BEST_EXPECTED_VALUE,
        propensity=chosen.propensity,
        expected_value=chosen.expected_value,
        action_probability=distribution[index],
        explored=explored,
        probabilities={s.offer.offer_id: p for s, p in zip(ranked, distribution, strict=True)},
    )


def _greedy_offer_id(
    context: CustomerContext,
    offers: Iterable[OfferSpec],
    propensity: Propensity,
    settings: NboSettings,
) -> str | None:
    """What treatment would have offered without exploration (uses no randomness)."""
    if frequency_capped(context, settings):
        return None
    eligible, _ = eligible_offers(context, offers)
    ranked = score_offers(eligible, propensity)
    if ranked and ranked[0].expected_value > settings.min_expected_value:
        return ranked[0].offer.offer_id
    return None
