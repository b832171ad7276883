"""The generative process behind `scorer simulate`.

Time is in seconds since the start of the observed period [0, T), T = days.
Customers are independent of each other; each one goes through:

Joining. 20% join in the first week (an established base that has a full
period of history by the end), the rest uniformly over the period, so the
final population mixes long-tenured and brand-new customers. Joining is one
signup session at a single second: `session_started`, `identify` (traits
country and signup_channel) and one `consent_updated` per channel (email, sms,
push, web, profiling; source "signup"). That second is `first_seen_at`.

Purchases (MBG/NBD). A purchase rate λ ~ Gamma(0.75, mean 1/30 per day): one
order a month on average, with many occasional buyers and a long tail of heavy
ones. While alive, purchases arrive as a Poisson process with rate λ. Right
after joining and after every purchase the customer drops out ("dies") with
probability p ~ Beta(1.2, 8) (mean 0.13). Dropping out at joining (MBG/NBD
rather than BG/NBD) gives the signups who never buy. The dead never buy again.

Spend (Gamma-Gamma). Each customer has ν ~ Gamma(3, rate 30) and orders of
Gamma(4, rate ν), so the customer's mean order is 4/ν ($60 on average with a
long tail) and their orders scatter around it (CV 0.5). Amounts are in cents,
at least $1.00.

Funnel. Every purchase ends a session: `session_started`, then
`product_viewed` (one per item plus Poisson(1) more, popular products more
often), `cart_updated` per item (1 + Poisson(0.6) items), `checkout_started`,
`order_completed`.

Browsing. Sessions that don't convert arrive while alive at rate
λ·engagement + 0.005/day, engagement ~ Gamma(2, 0.75) (1.5 browsing sessions
per purchase on average). They scale with λ because people who buy often also
browse often, and they stop at death, so engagement carries churn signal
beyond recency. Each views 1 + Poisson(1) products; 30% of them add to cart and
a quarter of those reach checkout (abandoned carts and checkouts).

Email. A campaign goes out every Tuesday at 15:00 UTC to everyone who joined
before it and has email consent. Customers open with their own propensity
(Beta(2, 5)) and click an opened email with theirs (Beta(1.5, 5)). The dead
still open a little (15% of their propensity) and never click. Each received
campaign makes 0.5% of readers unsubscribe (`consent_updated` email=false,
source "unsubscribe_link"); no campaigns reach them after that.

Later consent. A customer who declined email at signup opts in later with
probability 0.1; each other channel flips once with probability 0.02; both at a
uniform time in the period (source "preference_center").

Refunds. An order is refunded with probability refund_rate, 1-30 days later,
fully (60%) or partly (10-90% of it, rounded down, so never above the order).
Half of the refunds come after a `support_ticket` about the refund.

Support. 5% of orders lead to a `support_ticket` 0.5-10 days later; 40% of
tickets get a `survey_response` 1-3 days after, with csat 1-5 (mostly 4-5) and,
half of the time, an nps 0-10 in line with the csat.

Nothing at or after T is written. For customers alive at T the same purchase
process continues past T, drawing from a random stream of their own so that
neither the event file nor one horizon's ground truth depends on which
horizons were asked for. Those future orders, net of their refunds, are the
ground truth; they never appear in the event file.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import date
from itertools import accumulate
from typing import NamedTuple

import numpy as np

from service.simulation import vocabulary as vocab
from service.simulation.clock import DAY
from service.simulation.event_log import EventLog, Kind

LAUNCH_COHORT_SHARE = 0.2
LAUNCH_COHORT_DAYS = 7

PURCHASE_RATE_SHAPE = 0.75
PURCHASE_RATE_MEAN = 1 / 30  # per day
DROPOUT_BETA = (1.2, 8.0)

ORDER_SPEND_SHAPE = 4.0
SPEND_RATE_SHAPE = 3.0
SPEND_RATE_RATE = 30.0
MIN_ORDER_CENTS = 100

ENGAGEMENT_SHAPE = 2.0
ENGAGEMENT_SCALE = 0.75
BASE_BROWSE_RATE = 0.005  # per day
BROWSE_CART_SHARE = 0.3
FUNNEL_EXTRA_VIEWS = 1.0  # beyond one view per item bought
BROWSE_EXTRA_VIEWS = 1.0  # beyond the first view
BROWSE_CHECKOUT_SHARE = 0.25

OPEN_BETA = (2.0, 5.0)
CLICK_BETA = (1.5, 5.0)
DEAD_OPEN_FACTOR = 0.15
UNSUBSCRIBE_PER_CAMPAIGN = 0.005
OPEN_DELAY_MEAN = 6 * 3600
CAMPAIGN_WEEKDAY = 1  # Tuesday
CAMPAIGN_HOUR = 15

EMAIL_LATE_OPT_IN = 0.1
OTHER_CHANNEL_FLIP = 0.02

FULL_REFUND_SHARE = 0.6
REFUND_TICKET_SHARE = 0.5
ORDER_TICKET_SHARE = 0.05
SURVEY_SHARE = 0.4
NPS_SHARE = 0.5
CSAT_CUMULATIVE = tuple(accumulate(vocab.CSAT_WEIGHTS))

# Popularity rank r is skewed towards 0; multiplying by a number coprime with
# the catalogue size spreads the popular products over every category instead
# of piling them into the first one.
POPULARITY_SKEW = 3
PRODUCT_SPREAD = 7919

# Keeps each customer's future stream apart from the main generator's seed.
FUTURE_STREAM = 0xF17


class Traits(NamedTuple):
    signup: float
    purchase_rate: float  # per day
    dropout: float
    mean_spend: float  # dollars
    browse_rate: float  # per day
    open_rate: float
    click_rate: float
    app_share: float
    device: int
    country: int
    signup_channel: int
    consent: list[int]  # granted at signup, in vocab.CONSENT_CHANNELS order


class FutureOrder(NamedTuple):
    at: float
    amount_cents: int
    refund_cents: int  # all it will ever be refunded, whenever that happens


class CustomerOutcome(NamedTuple):
    alive_at_end: bool
    observed_orders: int  # completed and not fully refunded, as known at T
    observed_revenue_cents: int  # net of refunds known at T
    future_orders: list[FutureOrder]


def draw_population(rng: np.random.Generator, customers: int, period: int) -> list[Traits]:
    n = customers
    launch = rng.random(n) < LAUNCH_COHORT_SHARE
    launch_end = min(period, LAUNCH_COHORT_DAYS * DAY)
    signup = np.where(launch, rng.uniform(0, launch_end, n), rng.uniform(0, period, n))
    # Sorted so that customer ids follow joining order, as a real id sequence would.
    signup.sort()
    purchase_rate = rng.gamma(PURCHASE_RATE_SHAPE, PURCHASE_RATE_MEAN / PURCHASE_RATE_SHAPE, n)
    dropout = rng.beta(*DROPOUT_BETA, n)
    spend_rate = rng.gamma(SPEND_RATE_SHAPE, 1 / SPEND_RATE_RATE, n)
    engagement = rng.gamma(ENGAGEMENT_SHAPE, ENGAGEMENT_SCALE, n)
    columns = (
        signup,
        purchase_rate,
        dropout,
        ORDER_SPEND_SHAPE / spend_rate,
        purchase_rate * engagement + BASE_BROWSE_RATE,
        rng.beta(*OPEN_BETA, n),
        rng.beta(*CLICK_BETA, n),
        rng.beta(1.0, 2.0, n),
        rng.choice(len(vocab.DEVICES), n, p=vocab.DEVICE_WEIGHTS),
        rng.choice(len(vocab.COUNTRIES), n, p=vocab.COUNTRY_WEIGHTS),
        rng.choice(len(vocab.SIGNUP_CHANNELS), n, p=vocab.SIGNUP_CHANNEL_WEIGHTS),
        (rng.random((n, len(vocab.CONSENT_CHANNELS))) < vocab.CONSENT_AT_SIGNUP).astype(int),
    )
    return [Traits(*row) for row in zip(*(column.tolist() for column in columns), strict=True)]


def weekly_campaigns(start: date, period: int) -> list[int]:
    first_day = (CAMPAIGN_WEEKDAY - start.weekday()) % 7
    first = first_day * DAY + CAMPAIGN_HOUR * 3600
    return list(range(first, period, 7 * DAY))


def draw_order_cents(rng: np.random.Generator, mean_spend: float) -> int:
    dollars = rng.gamma(ORDER_SPEND_SHAPE, mean_spend / ORDER_SPEND_SHAPE)
    return max(MIN_ORDER_CENTS, round(dollars * 100))


def draw_refund(
    rng: np.random.Generator, amount_cents: int, ordered_at: float, refund_rate: float
) -> tuple[int, float] | None:
    if rng.random() >= refund_rate:
        return None
    refunded_at = ordered_at + rng.uniform(1, 30) * DAY
    if rng.random() < FULL_REFUND_SHARE:
        return amount_cents, refunded_at
    return max(1, int(amount_cents * rng.uniform(0.1, 0.9))), refunded_at


class CustomerProcess:
    """Runs one customer at a time, appending their observable events to the log."""

    def __init__(
        self,
        rng: np.random.Generator,
        log: EventLog,
        *,
        seed: int,
        period: int,
        future_until: int,
        campaigns: list[int],
        refund_rate: float,
    ) -> None:
        self._rng = rng
        self._emit = log.add
        self._seed = seed
        self._period = period
        self._future_until = future_until
        self._campaigns = campaigns
        self._refund_rate = refund_rate
        self._orders = 0
        self._tickets = 0

    def run(self, customer: int, traits: Traits) -> CustomerOutcome:
        self._signup(customer, traits)
        email_from = self._later_consent(customer, traits)
        purchases, death, first_future = self._purchases(traits)
        orders = revenue = 0
        for at in purchases:
            net_cents = self._order(customer, traits, at)
            orders += net_cents > 0
            revenue += net_cents
        self._browse(customer, traits, min(death, self._period))
        if email_from is not None:
            self._email(customer, traits, email_from, death)
        future = [] if first_future is None else self._future(customer, traits, first_future)
        return CustomerOutcome(death >= self._period, orders, revenue, future)

    def _signup(self, customer: int, traits: Traits) -> None:
        at = traits.signup
        self._emit(at, customer, Kind.SESSION_STARTED, self._platform(traits), traits.device)
        self._emit(at, customer, Kind.IDENTIFY, traits.country, traits.signup_channel)
        for channel, granted in enumerate(traits.consent):
            self._emit(at, customer, Kind.CONSENT_UPDATED, channel, granted, vocab.SIGNUP)

    def _later_consent(self, customer: int, traits: Traits) -> float | None:
        """Emits preference changes; returns when email consent starts (None: never)."""
        flips = self._rng.random(len(traits.consent)).tolist()
        times = self._rng.uniform(traits.signup, self._period, len(traits.consent)).tolist()
        for channel, granted in enumerate(traits.consent):
            # Withdrawing email consent is the unsubscribe link's job (see _email).
            if channel == vocab.EMAIL:
                chance = 0.0 if granted else EMAIL_LATE_OPT_IN
            else:
                chance = OTHER_CHANNEL_FLIP
            if flips[channel] < chance:
                self._emit(
                    times[channel], customer, Kind.CONSENT_UPDATED,
                    channel, 1 - granted, vocab.PREFERENCE_CENTER,
                )  # fmt: skip
        if traits.consent[vocab.EMAIL]:
            return traits.signup
        return times[vocab.EMAIL] if flips[vocab.EMAIL] < EMAIL_LATE_OPT_IN else None

    def _purchases(self, traits: Traits) -> tuple[list[float], float, float | None]:
        """Purchase times within the period, the death time (inf if alive at T)
        and, for the living, the first purchase after T."""
        rng = self._rng
        if rng.random() < traits.dropout:
            return [], traits.signup, None
        mean_gap = DAY / traits.purchase_rate
        times: list[float] = []
        at = traits.signup
        while True:
            at += rng.exponential(mean_gap)
            if at >= self._period:
                return times, float("inf"), at
            times.append(at)
            if rng.random() < traits.dropout:
                return times, at, None

    def _order(self, customer: int, traits: Traits, at: float) -> int:
        """Emits the funnel, the order and its aftermath; returns its net cents known at T."""
        rng = self._rng
        emit = self._emit
        items = 1 + int(rng.poisson(0.6))
        views = items + int(rng.poisson(FUNNEL_EXTRA_VIEWS))
        session_start = max(traits.signup, at - rng.uniform(4, 40) * 60)
        checkout = max(session_start, at - rng.uniform(30, 240))
        view_times = np.sort(rng.uniform(session_start, checkout, views)).tolist()
        cart_delays = rng.uniform(5, 90, items).tolist()
        products = self._products(views)

        emit(session_start, customer, Kind.SESSION_STARTED, self._platform(traits), traits.device)
        for viewed_at, product in zip(view_times, products, strict=True):
            emit(viewed_at, customer, Kind.PRODUCT_VIEWED, product)
        # What goes to the cart was seen first; the extra views are the ones that didn't win.
        for viewed_at, delay, product in zip(view_times, cart_delays, products, strict=False):
            emit(min(viewed_at + delay, checkout), customer, Kind.CART_UPDATED, product)
        emit(checkout, customer, Kind.CHECKOUT_STARTED, items)
        self._orders += 1
        order = self._orders
        amount = draw_order_cents(rng, traits.mean_spend)
        emit(at, customer, Kind.ORDER_COMPLETED, order, amount, items)

        if rng.random() < ORDER_TICKET_SHARE:
            topic = vocab.ORDER_TICKET_TOPICS[int(rng.integers(len(vocab.ORDER_TICKET_TOPICS)))]
            self._ticket(customer, at + rng.uniform(0.5, 10) * DAY, topic)
        refund = draw_refund(rng, amount, at, self._refund_rate)
        if refund is None:
            return amount
        refund_cents, refunded_at = refund
        if rng.random() < REFUND_TICKET_SHARE:
            asked_at = max(at, refunded_at - rng.uniform(2 / 24, 2) * DAY)
            self._ticket(customer, asked_at, vocab.REFUND_TOPIC)
        reason = int(rng.integers(len(vocab.REFUND_REASONS)))
        emit(refunded_at, customer, Kind.ORDER_REFUNDED, order, refund_cents, reason)
        return amount - refund_cents if refunded_at < self._period else amount

    def _ticket(self, customer: int, at: float, topic: int) -> None:
        rng = self._rng
        self._tickets += 1
        ticket = self._tickets
        self._emit(at, customer, Kind.SUPPORT_TICKET, ticket, topic)
        if rng.random() >= SURVEY_SHARE:
            return
        answered_at = at + rng.uniform(1, 3) * DAY
        csat = 1 + bisect_right(CSAT_CUMULATIVE, rng.random() * CSAT_CUMULATIVE[-1])
        nps = -1
        if rng.random() < NPS_SHARE:
            nps = min(10, max(0, round(2 * csat - 1 + rng.normal(0, 1.5))))
        self._emit(answered_at, customer, Kind.SURVEY_RESPONSE, csat, nps, ticket)

    def _browse(self, customer: int, traits: Traits, alive_until: float) -> None:
        rng = self._rng
        span_days = (alive_until - traits.signup) / DAY
        sessions = int(rng.poisson(traits.browse_rate * span_days)) if span_days > 0 else 0
        if sessions == 0:
            return
        starts = rng.uniform(traits.signup, alive_until, sessions).tolist()
        lengths = rng.uniform(60, 1500, sessions).tolist()
        view_counts = (1 + rng.poisson(BROWSE_EXTRA_VIEWS, sessions)).tolist()
        carts = (rng.random(sessions) < BROWSE_CART_SHARE).tolist()
        checkouts = (rng.random(sessions) < BROWSE_CHECKOUT_SHARE).tolist()
        apps = (rng.random(sessions) < traits.app_share).tolist()
        total_views = sum(view_counts)
        offsets = rng.random(total_views).tolist()
        products = self._products(total_views)

        emit = self._emit
        first = 0
        for start, length, count, cart, checkout, app in zip(
            starts, lengths, view_counts, carts, checkouts, apps, strict=True
        ):
            emit(start, customer, Kind.SESSION_STARTED, int(app), traits.device)
            last = first + count
            for offset, product in zip(
                sorted(offsets[first:last]), products[first:last], strict=True
            ):
                viewed_at = start + offset * length
                emit(viewed_at, customer, Kind.PRODUCT_VIEWED, product)
            if cart:
                emit(viewed_at + 20, customer, Kind.CART_UPDATED, products[last - 1])
                if checkout:
                    emit(viewed_at + 80, customer, Kind.CHECKOUT_STARTED, 1)
            first = last

    def _email(self, customer: int, traits: Traits, email_from: float, death: float) -> None:
        rng = self._rng
        first = bisect_right(self._campaigns, email_from)
        received = self._campaigns[first:]
        if not received:
            return
        unsubscribes = np.flatnonzero(rng.random(len(received)) < UNSUBSCRIBE_PER_CAMPAIGN)
        if unsubscribes.size:
            received = received[: unsubscribes[0] + 1]
        n = len(received)
        alive_until = bisect_left(received, death)  # campaigns before this index reach the living
        open_draws = rng.random(n).tolist()
        click_draws = rng.random(n).tolist()
        open_delays = rng.exponential(OPEN_DELAY_MEAN, n).tolist()
        click_delays = rng.uniform(10, 900, n).tolist()
        dead_open_rate = traits.open_rate * DEAD_OPEN_FACTOR
        for i, sent_at in enumerate(received):
            alive = i < alive_until
            campaign = first + i + 1
            if open_draws[i] < (traits.open_rate if alive else dead_open_rate):
                opened_at = sent_at + open_delays[i]
                self._emit(opened_at, customer, Kind.EMAIL_OPENED, campaign)
                if alive and click_draws[i] < traits.click_rate:
                    clicked_at = opened_at + click_delays[i]
                    self._emit(clicked_at, customer, Kind.EMAIL_CLICKED, campaign)
        if unsubscribes.size:
            left_at = received[-1] + open_delays[-1] + click_delays[-1]
            self._emit(
                left_at, customer, Kind.CONSENT_UPDATED,
                vocab.EMAIL, 0, vocab.UNSUBSCRIBE_LINK,
            )  # fmt: skip

    def _future(self, customer: int, traits: Traits, first_at: float) -> list[FutureOrder]:
        rng = np.random.Generator(np.random.PCG64([self._seed, FUTURE_STREAM, customer]))
        mean_gap = DAY / traits.purchase_rate
        orders: list[FutureOrder] = []
        at = first_at
        while at <= self._future_until:
            amount = draw_order_cents(rng, traits.mean_spend)
            refund = draw_refund(rng, amount, at, self._refund_rate)
            orders.append(FutureOrder(at, amount, 0 if refund is None else refund[0]))
            if rng.random() < traits.dropout:
                break
            at += rng.exponential(mean_gap)
        return orders

    def _platform(self, traits: Traits) -> int:
        return int(self._rng.random() < traits.app_share)

    def _products(self, n: int) -> list[int]:
        ranks = (self._rng.random(n) ** POPULARITY_SKEW * vocab.PRODUCTS).astype(np.int64)
        return (ranks * PRODUCT_SPREAD % vocab.PRODUCTS).tolist()
