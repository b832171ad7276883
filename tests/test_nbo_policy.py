"""The next-best-offer policy, pure: eligibility, consent, frequency cap, control, exploration."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from service.config import NboSettings, Settings
from service.offers import priors
from service.offers.policy import (
    BEST_EXPECTED_VALUE,
    BUDGET_EXHAUSTED,
    CONTROL_GROUP,
    EXPLORED,
    FREQUENCY_CAP,
    NO_CONSENT,
    NO_ELIGIBLE_OFFER,
    NO_POSITIVE_VALUE,
    REASONS,
    CustomerContext,
    Decision,
    OfferSpec,
    PastDecision,
    control_bucket,
    decide,
    history_window,
)
from service.vocabulary import CHURN_BANDS, SEGMENTS, VALUE_TIERS
from service.vocabulary import OFFER_CHANNELS as CHANNELS

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def offer(offer_id: str = "o1", **fields) -> OfferSpec:
    base = {"name": offer_id, "channel": "email", "value": Decimal(100), "cost": Decimal(1)}
    return OfferSpec(offer_id=offer_id, **{**base, **fields})


def context(customer_id: str | None = "c1", **fields) -> CustomerContext:
    base = {
        "now": NOW,
        "segment": "Champions",
        "value_tier": "high",
        "churn_band": "low",
        "consent": dict.fromkeys(CHANNELS, True),
    }
    return CustomerContext(customer_id=customer_id, **{**base, **fields})


def constant(p: float):
    return lambda _offer: p


NO_CONTROL = NboSettings(control_share=0.0, epsilon=0.0)


# --- random worlds --------------------------------------------------------------------------


def _maybe_subset(rng: random.Random, names: tuple[str, ...]) -> frozenset[str] | None:
    if rng.random() < 0.5:
        return None
    return frozenset(rng.sample(names, rng.randint(1, len(names))))


def random_offer(rng: random.Random, index: int, now: datetime) -> OfferSpec:
    starts = now + rng.choice([-30, -1, 0, 1, 5]) * DAY if rng.random() < 0.5 else None
    ends = now + rng.choice([-2, 0, 1, 30]) * DAY if rng.random() < 0.4 else None
    if starts and ends and ends <= starts:
        ends = None
    budget = Decimal(rng.choice([0, 1, 5, 50, 1000])) if rng.random() < 0.3 else None
    return OfferSpec(
        offer_id=f"o{index}",
        name=f"offer {index}",
        channel=rng.choice(CHANNELS),
        value=Decimal(rng.randint(0, 200)),
        cost=Decimal(rng.randint(0, 10)),
        starts_at=starts,
        ends_at=ends,
        segments=_maybe_subset(rng, SEGMENTS),
        value_tiers=_maybe_subset(rng, VALUE_TIERS),
        churn_bands=_maybe_subset(rng, CHURN_BANDS),
        min_days_since_last_offer=rng.choice([0, 0, 3, 7, 14]),
        budget=budget,
        spent=Decimal(rng.randint(0, 10)) if budget is not None else Decimal(0),
    )


def random_context(rng: random.Random, customer_id: str) -> CustomerContext:
    consent = {channel: rng.choice([True, True, False, None]) for channel in CHANNELS}
    history = [
        PastDecision(NOW - timedelta(hours=rng.randint(1, 24 * 45)), rng.choice([None, "x"]))
        for _ in range(rng.randint(0, 4))
    ]
    return CustomerContext(
        customer_id=customer_id,
        now=NOW,
        segment=rng.choice([*SEGMENTS, None]),
        value_tier=rng.choice([*VALUE_TIERS, None]),
        churn_band=rng.choice([*CHURN_BANDS, None]),
        consent=consent,
        history=history,
    )


def random_propensity(rng: random.Random):
    table: dict[str, float] = {}
    return lambda o: table.setdefault(o.offer_id, rng.random() * 0.3)


# An independent statement of the rules, to check the policy against.


def targeted(o: OfferSpec, ctx: CustomerContext) -> bool:
    live = (o.starts_at is None or o.starts_at <= ctx.now) and (
        o.ends_at is None or ctx.now < o.ends_at
    )
    lists = [(o.segments, ctx.segment), (o.value_tiers, ctx.value_tier)]
    lists.append((o.churn_bands, ctx.churn_band))
    fits = all(allowed is None or value in allowed for allowed, value in lists)
    offered = [d.decided_at for d in ctx.history if d.offer_id and d.decided_at <= ctx.now]
    rested = not offered or ctx.now - max(offered) >= timedelta(days=o.min_days_since_last_offer)
    return live and fits and rested


def consented(o: OfferSpec, ctx: CustomerContext) -> bool:
    return ctx.consent.get(o.channel) is True


def affordable(o: OfferSpec) -> bool:
    return o.budget is None or o.budget - o.spent >= o.cost


def offers_in_window(ctx: CustomerContext, days: int) -> int:
    return sum(
        1
        for d in ctx.history
        if d.offer_id and ctx.now - timedelta(days=days) < d.decided_at <= ctx.now
    )


# --- the acceptance properties ----------------------------------------------------------------


def test_ten_thousand_random_decisions_keep_every_rule():
    rng = random.Random(20260601)
    settings = NboSettings(epsilon=0.1, control_share=0.1, frequency_cap=2)
    decisions: list[Decision] = []
    for n in range(10_000):
        ctx = random_context(rng, f"cust-{n}")
        catalog = [random_offer(rng, i, NOW) for i in range(rng.randint(0, 8))]
        decision = decide(ctx, catalog, random_propensity(rng), settings, rng)
        decisions.append(decision)
        assert decision.reason in REASONS
        if decision.offer is None:
            assert decision.group in ("control", "none")
            assert decision.action_probability == 1.0
            continue
        chosen = decision.offer
        assert decision.group == "treatment"
        assert targeted(chosen, ctx), "ineligible offer chosen"
        assert consented(chosen, ctx), "offer on a channel without consent"
        assert affordable(chosen), "offer over its budget"
        assert offers_in_window(ctx, 30) < 2, "frequency cap exceeded"
        assert decision.expected_value == pytest.approx(
            decision.propensity * float(chosen.value) - float(chosen.cost)
        )
        assert decision.expected_value > 0
        assert math.isclose(sum(decision.probabilities.values()), 1.0)
        assert decision.action_probability == decision.probabilities[chosen.offer_id]
        k = len(decision.probabilities)
        greedy = max(decision.probabilities, key=decision.probabilities.get)
        expected = 0.9 * (chosen.offer_id == greedy) + 0.1 / k
        assert decision.action_probability == pytest.approx(expected)
        assert decision.reason == (EXPLORED if decision.explored else BEST_EXPECTED_VALUE)

    groups = Counter(d.group for d in decisions)
    assert abs(groups["control"] / len(decisions) - 0.10) <= 0.02
    treated = [d for d in decisions if d.group == "treatment"]
    assert len(treated) > 1000
    explored = sum(d.explored for d in treated) / len(treated)
    assert abs(explored - 0.1) < 0.02
    # Every kind of outcome actually happened in the random world.
    assert {d.reason for d in decisions} >= {
        CONTROL_GROUP,
        FREQUENCY_CAP,
        NO_ELIGIBLE_OFFER,
        NO_CONSENT,
        BUDGET_EXHAUSTED,
        BEST_EXPECTED_VALUE,
        EXPLORED,
    }


def test_no_offer_reasons_are_truthful():
    rng = random.Random(7)
    settings = NboSettings(epsilon=0.05, control_share=0.0, frequency_cap=2)
    for n in range(3000):
        ctx = random_context(rng, f"r-{n}")
        catalog = [random_offer(rng, i, NOW) for i in range(rng.randint(0, 6))]
        decision = decide(ctx, catalog, random_propensity(rng), settings, rng)
        stage1 = [o for o in catalog if targeted(o, ctx)]
        stage2 = [o for o in stage1 if consented(o, ctx)]
        stage3 = [o for o in stage2 if affordable(o)]
        if offers_in_window(ctx, 30) >= 2:
            assert decision.reason == FREQUENCY_CAP
        elif not stage1:
            assert decision.reason == NO_ELIGIBLE_OFFER
        elif not stage2:
            assert decision.reason == NO_CONSENT
        elif not stage3:
            assert decision.reason == BUDGET_EXHAUSTED
        else:
            assert decision.reason in (BEST_EXPECTED_VALUE, EXPLORED, NO_POSITIVE_VALUE)


@pytest.mark.parametrize("share", [0.05, 0.10, 0.25, 0.5])
def test_control_group_is_the_configured_share_and_stable(share):
    settings = NboSettings(control_share=share)
    rng = random.Random(1)
    catalog = [offer()]
    groups = [
        decide(context(f"share-{n}"), catalog, constant(0.5), settings, rng).group
        for n in range(10_000)
    ]
    assert abs(groups.count("control") / len(groups) - share) <= 0.02
    # The same customer always lands in the same group, whatever the rng does.
    for n in range(200):
        seen = {
            decide(context(f"share-{n}"), catalog, constant(0.5), settings, random.Random(s)).group
            for s in range(5)
        }
        assert len(seen) == 1


def test_control_assignment_is_a_salted_hash():
    assert control_bucket("c1", "a") == control_bucket("c1", "a")
    buckets = [control_bucket(f"c{n}", "salt") for n in range(1000)]
    assert all(0 <= b < 1 for b in buckets)
    resalted = [control_bucket(f"c{n}", "other") for n in range(1000)]
    assert buckets != resalted


def test_control_decision_records_what_treatment_would_have_offered():
    settings = NboSettings(control_share=0.999999, epsilon=0.5)
    catalog = [offer("cheap", value=Decimal(10)), offer("rich", value=Decimal(500))]
    decision = decide(context(), catalog, constant(0.1), settings, random.Random(0))
    assert decision.group == "control" and decision.reason == CONTROL_GROUP
    assert decision.offer is None and decision.action_probability == 1.0
    assert decision.counterfactual_offer_id == "rich"


def test_anonymous_callers_are_assigned_per_decision():
    settings = NboSettings(control_share=0.2)
    rng = random.Random(3)
    groups = [
        decide(context(None), [offer()], constant(0.5), settings, rng).group for _ in range(5000)
    ]
    assert abs(groups.count("control") / 5000 - 0.2) <= 0.02


def test_frequency_cap_and_cooldown_hold_over_a_simulated_timeline():
    """Customers ask several times a day for 120 days; what was offered is fed back."""
    rng = random.Random(42)
    settings = NboSettings(epsilon=0.2, control_share=0.1, frequency_cap=3)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    catalog = [
        offer("a", channel="email", min_days_since_last_offer=0),
        offer("b", channel="sms", min_days_since_last_offer=5, value=Decimal(150)),
        offer("c", channel="push", min_days_since_last_offer=2, value=Decimal(80)),
    ]
    histories: dict[str, list[PastDecision]] = {f"t{n}": [] for n in range(300)}
    offered = 0
    for day in range(120):
        requests = [
            (start + day * DAY + timedelta(seconds=rng.randint(0, 86_399)), customer)
            for customer in histories
            for _ in range(rng.choice([0, 0, 1, 1, 2, 4]))
        ]
        for now, customer in sorted(requests):
            history = histories[customer]
            ctx = context(customer, now=now, history=tuple(history))
            decision = decide(ctx, catalog, constant(0.2), settings, rng)
            if decision.offer is not None:
                history.append(PastDecision(now, decision.offer_id))
                offered += 1
    assert offered > 3000
    by_id = {o.offer_id: o for o in catalog}
    for history in histories.values():
        times = [d.decided_at for d in history]
        for i, decided in enumerate(history):
            window = [t for t in times if decided.decided_at - 30 * DAY < t <= decided.decided_at]
            assert len(window) <= 3, "more than 3 offers in 30 days"
            if i:
                gap = decided.decided_at - history[i - 1].decided_at
                assert gap >= by_id[decided.offer_id].min_days_since_last_offer * DAY
    # The cap binds: busy customers reach it.
    assert max(len(h) for h in histories.values()) >= 12


def test_action_probability_matches_empirical_choice_frequencies():
    settings = NboSettings(epsilon=0.3, control_share=0.0)
    catalog = [
        offer("low", value=Decimal(20)),
        offer("mid", value=Decimal(40)),
        offer("top", value=Decimal(60)),
    ]
    rng = random.Random(11)
    runs = 30_000
    picks: Counter[str] = Counter()
    logged: dict[str, float] = {}
    for _ in range(runs):
        decision = decide(context(), catalog, constant(0.5), settings, rng)
        picks[decision.offer_id] += 1
        logged[decision.offer_id] = decision.action_probability
        assert math.isclose(sum(decision.probabilities.values()), 1.0)
    assert logged["top"] == pytest.approx(0.7 + 0.1)
    assert logged["mid"] == pytest.approx(0.1) and logged["low"] == pytest.approx(0.1)
    for offer_id, p in logged.items():
        sd = math.sqrt(p * (1 - p) / runs)
        assert abs(picks[offer_id] / runs - p) < 5 * sd


@pytest.mark.parametrize("epsilon", [0.02, 0.05, 0.2])
def test_exploration_rate_is_epsilon(epsilon):
    settings = NboSettings(epsilon=epsilon, control_share=0.0, frequency_cap=10**6)
    catalog = [offer(f"e{i}", value=Decimal(10 * (i + 1))) for i in range(4)]
    rng = random.Random(5)
    runs = 20_000
    explored = sum(
        decide(context(f"x{n}"), catalog, constant(0.5), settings, rng).explored
        for n in range(runs)
    )
    assert abs(explored / runs - epsilon) < 4 * math.sqrt(epsilon * (1 - epsilon) / runs)


def test_greedy_without_exploration_and_uniform_with_full_exploration():
    catalog = [offer("x", value=Decimal(10)), offer("y", value=Decimal(30))]
    greedy = decide(context(), catalog, constant(0.5), NO_CONTROL, random.Random(0))
    assert greedy.offer_id == "y" and greedy.action_probability == 1.0 and not greedy.explored
    uniform = NboSettings(control_share=0.0, epsilon=1.0)
    decision = decide(context(), catalog, constant(0.5), uniform, random.Random(0))
    assert decision.explored and decision.action_probability == 0.5


def test_ties_break_by_offer_id():
    catalog = [offer("b"), offer("a")]
    decision = decide(context(), catalog, constant(0.5), NO_CONTROL, random.Random(0))
    assert decision.offer_id == "a"


# --- individual rules -------------------------------------------------------------------------


def decide_one(o: OfferSpec, ctx: CustomerContext | None = None, p: float = 0.5) -> Decision:
    return decide(ctx or context(), [o], constant(p), NO_CONTROL, random.Random(0))


def test_consent_must_be_explicitly_granted():
    assert decide_one(offer(channel="sms"), context(consent={"sms": True})).offer_id == "o1"
    for stated in (None, False):
        decision = decide_one(offer(channel="sms"), context(consent={"sms": stated}))
        assert decision.offer is None and decision.reason == NO_CONSENT
    assert decide_one(offer(channel="push"), context(consent={})).reason == NO_CONSENT


def test_active_window_starts_inclusive_and_ends_exclusive():
    assert decide_one(offer(starts_at=NOW)).offer is not None
    assert decide_one(offer(starts_at=NOW + timedelta(seconds=1))).reason == NO_ELIGIBLE_OFFER
    assert decide_one(offer(ends_at=NOW)).reason == NO_ELIGIBLE_OFFER
    assert decide_one(offer(ends_at=NOW + timedelta(seconds=1))).offer is not None


def test_targeting_lists_and_unknown_customer_attributes():
    assert decide_one(offer(segments=frozenset({"Champions"}))).offer is not None
    assert decide_one(offer(segments=frozenset({"Lost"}))).reason == NO_ELIGIBLE_OFFER
    assert decide_one(offer(value_tiers=frozenset({"low"}))).reason == NO_ELIGIBLE_OFFER
    assert decide_one(offer(churn_bands=frozenset({"high"}))).reason == NO_ELIGIBLE_OFFER
    unknown = context(segment=None, value_tier=None, churn_band=None)
    assert decide_one(offer(), unknown).offer is not None
    assert decide_one(offer(segments=frozenset(SEGMENTS)), unknown).reason == NO_ELIGIBLE_OFFER


def test_min_days_since_last_offer_counts_any_offer_but_not_non_offers():
    recent = context(history=[PastDecision(NOW - 3 * DAY, "other")])
    assert decide_one(offer(min_days_since_last_offer=7), recent).reason == NO_ELIGIBLE_OFFER
    assert decide_one(offer(min_days_since_last_offer=3), recent).offer is not None
    nothing = context(history=[PastDecision(NOW - DAY, None)])
    assert decide_one(offer(min_days_since_last_offer=7), nothing).offer is not None


def test_budget_must_cover_the_cost_exactly():
    ok = offer(budget=Decimal("0.3"), spent=Decimal("0.1"), cost=Decimal("0.2"))
    assert decide_one(ok).offer is not None
    short = offer(budget=Decimal("0.3"), spent=Decimal("0.1001"), cost=Decimal("0.2"))
    assert decide_one(short).reason == BUDGET_EXHAUSTED


def test_offers_worth_nothing_are_not_made():
    assert decide_one(offer(value=Decimal(10), cost=Decimal(5)), p=0.5).reason == NO_POSITIVE_VALUE
    assert decide_one(offer(value=Decimal(10), cost=Decimal(0)), p=0.0).reason == NO_POSITIVE_VALUE


def test_frequency_cap_counts_offers_inside_the_window_only():
    settings = NboSettings(control_share=0.0, frequency_cap=2, frequency_window_days=10)
    inside = [PastDecision(NOW - DAY, "a"), PastDecision(NOW - 9 * DAY, "b")]
    capped = decide(context(history=inside), [offer()], constant(0.5), settings, random.Random(0))
    assert capped.reason == FREQUENCY_CAP and capped.group == "none"
    aged = [PastDecision(NOW - DAY, "a"), PastDecision(NOW - 10 * DAY, "b")]
    ok = decide(context(history=aged), [offer()], constant(0.5), settings, random.Random(0))
    assert ok.offer is not None
    no_offers = [PastDecision(NOW - DAY, None)] * 5
    ok = decide(context(history=no_offers), [offer()], constant(0.5), settings, random.Random(0))
    assert ok.offer is not None


def test_odd_propensities_are_clamped():
    assert decide_one(offer(), p=float("nan")).reason == NO_POSITIVE_VALUE
    assert decide_one(offer(), p=7.0).propensity == 1.0
    assert decide_one(offer(cost=Decimal(0)), p=-1.0).reason == NO_POSITIVE_VALUE


def test_history_window_covers_cap_and_cooldowns():
    settings = NboSettings(frequency_window_days=30)
    assert history_window(settings, []) == 30 * DAY
    assert history_window(settings, [offer(min_days_since_last_offer=45)]) == 45 * DAY


def test_settings_are_validated_and_read_from_the_environment(monkeypatch):
    with pytest.raises(ValueError):
        NboSettings(epsilon=1.5)
    with pytest.raises(ValueError):
        NboSettings(control_share=1.0)
    monkeypatch.setenv("SCORER_NBO_EPSILON", "0.2")
    monkeypatch.setenv("SCORER_NBO_CONTROL_SHARE", "0.15")
    monkeypatch.setenv("SCORER_NBO_FREQUENCY_CAP", "5")
    policy = Settings().nbo
    assert (policy.epsilon, policy.control_share, policy.frequency_cap) == (0.2, 0.15, 5)
    assert policy.frequency_window_days == 30


# --- priors -----------------------------------------------------------------------------------


def test_every_segment_has_a_prior():
    assert set(priors.SEGMENT_PRIORS) == set(SEGMENTS)
    assert all(0 < p < 1 for p in priors.SEGMENT_PRIORS.values())
    assert priors.prior_rate(None) == priors.DEFAULT_PRIOR
    assert priors.prior_rate("Unheard Of") == priors.DEFAULT_PRIOR


def test_shrinkage_moves_from_prior_to_observed_rate():
    assert priors.shrunk_rate(0, 0, 0.1) == pytest.approx(0.1)
    assert priors.shrunk_rate(5, 10, 0.1, strength=10) == pytest.approx((5 + 1) / 20)
    assert priors.shrunk_rate(3000, 10_000, 0.1) == pytest.approx(0.3, abs=0.001)
    post = priors.posterior(3, 10, 0.1, strength=20)
    assert (post.alpha, post.beta) == pytest.approx((5.0, 25.0))
    assert post.mean == pytest.approx(5 / 30)
    assert priors.posterior(30, 100, 0.1).variance < post.variance
    assert priors.segment_propensity("Lost") == pytest.approx(0.01)
    for bad in [(5, 3, 0.1), (-1, 3, 0.1), (1, 3, 0.0), (1, 3, 1.0)]:
        with pytest.raises(ValueError):
            priors.shrunk_rate(*bad)
