"""An offer-response world: simulated customers accept offers with KNOWN probabilities.

It is how the next-best-offer policy is tested against an oracle. A customer is
a feature dict in the shape `read_features` returns (as `read_features` returns it), drawn by
`sample_customers` from the same latents as the event simulator
(`service.simulation.process`: purchase rate, dropout, spend, browsing
engagement, email open and click propensities, consent at signup). An offer is
a `WorldOffer`: the catalog entry the policy sees (`OfferSpec`: channel, value,
cost) plus its "kind" and its response coefficients, which the policy never sees.

Acceptance. Six signals are computed from the feature dict (`signals`):

| signal       | definition                                        | range  |
|--------------|---------------------------------------------------|--------|
| `new`        | 1 when the customer has no counted order, else 0  | 0 / 1  |
| `fresh`      | exp(−recency_days / 45) for buyers, 0 otherwise   | [0, 1] |
| `frequency`  | ln(1 + orders_total)                              | 0 – ~4 |
| `spend`      | ln(aov / 60) clipped to ±2, 0 without orders      | [−2, 2]|
| `engagement` | min(email_opens_30d, 8) / 4                       | [0, 2] |
| `browsing`   | ln(1 + sessions_30d)                              | 0 – ~4 |

and a customer accepts offer o with probability

    P(accept | x, o) = sigmoid(intercept_o + Σ_s weight_{o,s} · signal_s(x))

Customers who have not consented (`consent[channel] is True`) to the offer's
channel cannot receive it (`eligible`), as in the policy.

The default catalog (`default_world`) has five offers of different kinds whose
coefficients make each the best choice for a different kind of customer:
a welcome discount for engaged signups who never bought, a win-back voucher
for lapsed frequent buyers, free shipping for recent browsers, a VIP bundle
for frequent big spenders and an SMS flash sale for heavy browsers. The
expected value of showing offer o is P(accept | x, o) · value_o − cost_o (the
cost is paid per impression, as in `policy.score_offers`); the oracle picks
the eligible offer with the highest expected value, or none when none is
positive (`oracle_choices`, `oracle_value`).

Histories. `history` shows offers to randomly drawn customers under a logging
policy (uniform over the eligible offers, or epsilon-greedy around a supplied
greedy choice), draws acceptance from the true probabilities and records what
the decision log would hold: the customer's features, segment, the offer, the
outcome and the logging policy's probability of that offer (`action_probability`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from service.offers.policy import OfferSpec
from service.simulation import process
from service.simulation import vocabulary as vocab
from service.training.propensity import ShownOffer
from service.training.segment import NEW_CUSTOMER_DAYS
from service.vocabulary import segment_name, segment_without_orders

SIGNALS: tuple[str, ...] = ("new", "fresh", "frequency", "spend", "engagement", "browsing")
FRESH_DAYS = 45.0
REFERENCE_AOV = 60.0
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
MAX_TENURE_DAYS = 730

# Fixed RFM score edges for `rfm_segment` (the trained segment model learns quantiles;
# these are in the same spirit and need no training).
RECENCY_EDGES = (14, 30, 60, 120)  # recency_days <= edge[i] -> score 5 - i
FREQUENCY_EDGES = (1, 2, 4, 8)  # orders_total <= edge[i] -> score 1 + i


@dataclass(frozen=True)
class WorldOffer:
    """An offer as the world knows it: the policy's view plus hidden response coefficients."""

    spec: OfferSpec
    kind: str
    intercept: float
    weights: Mapping[str, float] = field(default_factory=dict)  # signal name -> coefficient

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(SIGNALS)
        if unknown:
            raise ValueError(f"unknown signals {sorted(unknown)}")

    @property
    def offer_id(self) -> str:
        return self.spec.offer_id

    @property
    def coefficients(self) -> np.ndarray:
        return np.array([self.weights.get(name, 0.0) for name in SIGNALS])


def signals(features: Mapping) -> np.ndarray:
    """The six acceptance signals of one customer, in SIGNALS order (see the module docstring)."""
    orders = features["orders_total"] or 0
    recency = features["recency_days"]
    buyer = orders > 0 and recency is not None
    aov = features["aov"]
    spend = min(max(math.log(float(aov) / REFERENCE_AOV), -2.0), 2.0) if buyer and aov else 0.0
    return np.array(
        [
            0.0 if buyer else 1.0,
            math.exp(-float(recency) / FRESH_DAYS) if buyer else 0.0,
            math.log1p(orders),
            spend,
            min(features["email_opens_30d"] or 0, 8) / 4.0,
            math.log1p(features["sessions_30d"] or 0),
        ]
    )


def signal_matrix(rows: Sequence[Mapping]) -> np.ndarray:
    return np.array([signals(row) for row in rows]).reshape(-1, len(SIGNALS))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass(frozen=True)
class OfferWorld:
    offers: tuple[WorldOffer, ...]

    def __post_init__(self) -> None:
        ids = [o.offer_id for o in self.offers]
        if len(set(ids)) != len(ids):
            raise ValueError("offer ids must be unique")

    @property
    def specs(self) -> list[OfferSpec]:
        return [o.spec for o in self.offers]

    def offer(self, offer_id: str) -> WorldOffer:
        for o in self.offers:
            if o.offer_id == offer_id:
                return o
        raise KeyError(offer_id)

    # --- the truth -------------------------------------------------------------------------

    def probabilities(self, rows: Sequence[Mapping]) -> np.ndarray:
        """True P(accept) of every customer for every offer: [n, number of offers]."""
        S = signal_matrix(rows)
        W = np.array([o.coefficients for o in self.offers]).reshape(-1, len(SIGNALS))
        b = np.array([o.intercept for o in self.offers])
        return _sigmoid(S @ W.T + b)

    def accept_probability(self, features: Mapping, offer: WorldOffer | str) -> float:
        offer = self.offer(offer) if isinstance(offer, str) else offer
        return float(_sigmoid(offer.intercept + signals(features) @ offer.coefficients))

    def eligibility(self, rows: Sequence[Mapping]) -> np.ndarray:
        """[n, offers] booleans: the customer consented to the offer's channel."""
        return np.array(
            [[row["consent"].get(o.spec.channel) is True for o in self.offers] for row in rows],
            dtype=bool,
        ).reshape(-1, len(self.offers))

    def expected_values(self, rows: Sequence[Mapping]) -> np.ndarray:
        """True P(accept) · value − cost: [n, offers] (ineligible offers included)."""
        values = np.array([float(o.spec.value) for o in self.offers])
        costs = np.array([float(o.spec.cost) for o in self.offers])
        return self.probabilities(rows) * values - costs

    def draw(self, rng: np.random.Generator, features: Mapping, offer: WorldOffer | str) -> bool:
        """Does the customer accept? A Bernoulli draw with the true probability."""
        return bool(rng.random() < self.accept_probability(features, offer))

    # --- the oracle and other reference policies -------------------------------------------

    def oracle_choices(self, rows: Sequence[Mapping]) -> list[str | None]:
        """argmax over eligible offers of the true expected value; None when none is positive."""
        ev = np.where(self.eligibility(rows), self.expected_values(rows), -np.inf)
        best = ev.argmax(axis=1) if len(rows) else np.zeros(0, dtype=int)
        return [
            self.offers[j].offer_id if ev[i, j] > 0 else None for i, j in enumerate(best.tolist())
        ]

    def realised_value(self, rows: Sequence[Mapping], choices: Sequence[str | None]) -> float:
        """Mean true expected value of the chosen offers (no offer is worth 0)."""
        if len(rows) != len(choices):
            raise ValueError("one choice per customer")
        if not rows:
            return 0.0
        ev = self.expected_values(rows)
        index = {o.offer_id: j for j, o in enumerate(self.offers)}
        total = sum(ev[i, index[c]] for i, c in enumerate(choices) if c is not None)
        return float(total) / len(rows)

    def oracle_value(self, rows: Sequence[Mapping]) -> float:
        """Mean expected value per customer of always making the best choice."""
        return self.realised_value(rows, self.oracle_choices(rows))

    def random_value(self, rows: Sequence[Mapping]) -> float:
        """Mean expected value of a uniformly random eligible offer (none if none is eligible)."""
        if not rows:
            return 0.0
        eligible = self.eligibility(rows)
        ev = np.where(eligible, self.expected_values(rows), 0.0)
        k = eligible.sum(axis=1)
        return float(np.sum(ev.sum(axis=1)[k > 0] / k[k > 0]) / len(rows))

    # --- logged histories ------------------------------------------------------------------

    def history(
        self,
        rng: np.random.Generator,
        customers: Sequence[Mapping],
        impressions: int,
        *,
        epsilon: float = 1.0,
        greedy: Callable[[Mapping, list[WorldOffer]], str] | None = None,
        segments: Sequence[str] | None = None,
    ) -> list[ShownOffer]:
        """`impressions` offers shown to customers drawn with replacement from `customers`.

        The logging policy is epsilon-greedy over the customer's eligible offers: with
        probability epsilon uniform, else `greedy(features, eligible)` (epsilon must be 1
        without `greedy`: uniform logging). Customers with no eligible offer are skipped.
        `segments` defaults to `rfm_segment` of each customer.
        """
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError("epsilon must be within [0, 1]")
        if greedy is None and epsilon != 1.0:
            raise ValueError("epsilon-greedy logging needs a greedy choice")
        if segments is None:
            segments = [rfm_segment(row) for row in customers]
        eligible = self.eligibility(customers)
        candidates = np.flatnonzero(eligible.any(axis=1))
        if impressions > 0 and len(candidates) == 0:
            raise ValueError("no customer is eligible for any offer")
        probabilities = self.probabilities(customers)
        shown: list[ShownOffer] = []
        for i in rng.choice(candidates, size=impressions).tolist():
            options = np.flatnonzero(eligible[i])
            k = len(options)
            if greedy is not None and epsilon < 1.0:
                greedy_id = greedy(customers[i], [self.offers[j] for j in options])
                matches = [j for j in options if self.offers[j].offer_id == greedy_id]
                if not matches:
                    raise ValueError(f"greedy choice {greedy_id!r} is not an eligible offer")
                greedy_j = int(matches[0])
            else:
                greedy_j = -1
            explore = rng.random() < epsilon
            j = int(options[rng.integers(k)]) if explore or greedy_j < 0 else int(greedy_j)
            action_probability = (1.0 - epsilon) * (j == greedy_j) + epsilon / k
            accepted = bool(rng.random() < probabilities[i, j])
            shown.append(
                ShownOffer(
                    features=customers[i],
                    offer_id=self.offers[j].offer_id,
                    accepted=accepted,
                    segment=segments[i],
                    action_probability=action_probability,
                )
            )
        return shown


def _offer(offer_id, kind, channel, value, cost, intercept, **weights) -> WorldOffer:
    spec = OfferSpec(
        offer_id=offer_id, name=kind, channel=channel, value=Decimal(value), cost=Decimal(cost)
    )
    return WorldOffer(spec, kind, intercept, weights)


def default_world() -> OfferWorld:
    """Five offers; each is the best choice for a different kind of customer."""
    return OfferWorld(
        (
            _offer("welcome10", "welcome discount", "email", 40, "1.50", -3.3,
                   new=1.4, frequency=-0.4, engagement=1.8),
            _offer("winback25", "win-back voucher", "email", 90, "4.00", -3.6,
                   fresh=-2.2, frequency=0.8, spend=0.3, engagement=0.6),
            _offer("freeship", "free shipping", "web", 20, "0.50", -2.2,
                   new=-0.6, fresh=1.8, browsing=0.3),
            _offer("vipbundle", "VIP bundle", "push", 150, "6.00", -5.0,
                   fresh=1.0, frequency=0.7, spend=1.6),
            _offer("smsflash", "SMS flash sale", "sms", 30, "0.80", -3.2,
                   browsing=1.2, engagement=-0.4, fresh=0.4),
        )
    )  # fmt: skip


# --- customers ---------------------------------------------------------------------------------


def _day(as_of: datetime, days_before: float) -> datetime:
    return as_of - timedelta(days=float(days_before))


def _customer(
    rng: np.random.Generator, customer_id: str, as_of: datetime, consent: Sequence[bool]
) -> dict:
    """One plausible feature dict, from the event simulator's latents (process.py)."""
    tenure = int(rng.integers(0, MAX_TENURE_DAYS + 1))
    rate = rng.gamma(
        process.PURCHASE_RATE_SHAPE, process.PURCHASE_RATE_MEAN / process.PURCHASE_RATE_SHAPE
    )
    dropout = rng.beta(*process.DROPOUT_BETA)
    mean_spend = process.ORDER_SPEND_SHAPE / rng.gamma(
        process.SPEND_RATE_SHAPE, 1 / process.SPEND_RATE_RATE
    )
    engagement = rng.gamma(process.ENGAGEMENT_SHAPE, process.ENGAGEMENT_SCALE)
    open_rate = rng.beta(*process.OPEN_BETA)
    click_rate = rng.beta(*process.CLICK_BETA)

    # Purchases (MBG/NBD): days since joining of each order; dies with p at joining and after each.
    orders: list[float] = []
    t = 0.0
    alive = rng.random() >= dropout
    while alive:
        t += rng.exponential(1 / rate)
        if t > tenure:
            break
        orders.append(t)
        alive = rng.random() >= dropout
    death = t if not alive else math.inf  # days since joining (approximate for the dead)
    amounts = [process.draw_order_cents(rng, mean_spend) / 100 for _ in orders]
    ages = [tenure - o for o in orders]  # days before as_of

    def window(days: int | None) -> tuple[int, float]:
        picked = [a for age, a in zip(ages, amounts, strict=True) if days is None or age < days]
        return len(picked), round(sum(picked), 2)

    alive_30 = max(0.0, min(death, tenure) - max(0, tenure - 30))  # days alive in the last 30
    orders_30, revenue_30 = window(30)
    sessions = int(rng.poisson(alive_30 * (rate * engagement + process.BASE_BROWSE_RATE)))
    sessions += orders_30
    views = sessions + int(rng.poisson(process.BROWSE_EXTRA_VIEWS * sessions))
    cart_adds = orders_30 + int(rng.binomial(sessions - orders_30, process.BROWSE_CART_SHARE))
    checkouts = orders_30 + int(rng.binomial(cart_adds - orders_30, process.BROWSE_CHECKOUT_SHARE))
    campaigns = min(4, tenure // 7) if consent[vocab.EMAIL] else 0
    opens_p = open_rate if math.isinf(death) else open_rate * process.DEAD_OPEN_FACTOR
    opens = int(rng.binomial(campaigns, opens_p))
    clicks = int(rng.binomial(opens, click_rate)) if math.isinf(death) else 0
    orders_90, _ = window(90)
    tickets = int(rng.poisson(process.ORDER_TICKET_SHARE * orders_90))
    csat = (
        int(rng.choice([3, 4, 5, 5])) if tickets and rng.random() < process.SURVEY_SHARE else None
    )

    count, revenue = window(None)
    first_seen = _day(as_of, tenure)
    features: dict = {
        "customer_id": customer_id,
        "as_of": as_of,
        "first_seen_at": first_seen,
        "first_order_at": _day(as_of, ages[0]) if ages else None,
        "last_order_at": _day(as_of, ages[-1]) if ages else None,
        "recency_days": int(ages[-1]) if ages else None,
        "tenure_days": tenure,
        "orders_total": count,
        "revenue_total": revenue,
    }
    for days in (7, 30, 90, 365):
        features[f"orders_{days}d"], features[f"revenue_{days}d"] = window(days)
    features.update(
        aov=round(revenue / count, 2) if count else None,
        avg_days_between_orders=(
            round((int(ages[0]) - int(ages[-1])) / (count - 1), 4) if count >= 2 else None
        ),
        sessions_30d=sessions,
        product_views_30d=views,
        cart_adds_30d=cart_adds,
        checkouts_30d=checkouts,
        email_opens_30d=opens,
        email_clicks_30d=clicks,
        support_tickets_90d=tickets,
        last_csat=csat,
        consent=dict(zip(vocab.CONSENT_CHANNELS, (bool(c) for c in consent), strict=True)),
    )
    return features


def sample_customers(
    rng: np.random.Generator, n: int, *, as_of: datetime = AS_OF, prefix: str = "sim"
) -> list[dict]:
    """`n` feature dicts (as `read_features` returns them) of simulated customers at `as_of`."""
    consent = rng.random((n, len(vocab.CONSENT_CHANNELS))) < np.array(vocab.CONSENT_AT_SIGNUP)
    return [_customer(rng, f"{prefix}-{i:06d}", as_of, consent[i].tolist()) for i in range(n)]


def rfm_segment(features: Mapping) -> str:
    """The customer's RFM segment name with fixed score edges (no trained model needed)."""
    orders = features["orders_total"] or 0
    recency = features["recency_days"]
    if orders == 0 or recency is None:
        return segment_without_orders(features["tenure_days"], NEW_CUSTOMER_DAYS)
    r = 5 - sum(recency > edge for edge in RECENCY_EDGES)
    f = 1 + sum(orders > edge for edge in FREQUENCY_EDGES)
    return segment_name(r, f)
