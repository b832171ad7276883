"""Next-best-offer learning against an oracle, in a simulated offer-response world.

Pure (no database): simulated customers (feature dicts), a logged history with
uniform exploration, the propensity model trained and exported to ONNX, then
`policy.decide` on a fresh population, valued with the world's TRUE acceptance
probabilities.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from decimal import Decimal

import numpy as np
import pytest

from service.config import NboSettings
from service.features.vector import MODEL_FEATURES, feature_matrix
from service.modeling.artifacts import Artifact, Manifest
from service.offers import priors
from service.offers.policy import (
    BEST_EXPECTED_VALUE,
    EXPLORED,
    NO_CONSENT,
    NO_POSITIVE_VALUE,
    CustomerContext,
    OfferSpec,
    decide,
)
from service.offers.propensity import PropensityModel, design_matrix, input_names
from service.training import onnx_export
from service.training.propensity import (
    MIN_OFFER_IMPRESSIONS,
    ShownOffer,
    count_outcomes,
    export_propensity,
    fit_propensity,
    train_propensity,
)
from tests import offer_world as world_module
from tests.offer_world import (
    AS_OF,
    SIGNALS,
    OfferWorld,
    WorldOffer,
    default_world,
    rfm_segment,
    sample_customers,
    signals,
)

TRAIN_CUSTOMERS = 8000
IMPRESSIONS = 30000
EVAL_CUSTOMERS = 4000
RARE_IMPRESSIONS = 60  # a sixth offer shown too rarely for the model: priors only


@pytest.fixture(scope="module")
def world() -> OfferWorld:
    return default_world()


@pytest.fixture(scope="module")
def rare_offer() -> WorldOffer:
    spec = OfferSpec("rare", "rarely shown", "web", Decimal(50), Decimal(1))
    return WorldOffer(spec, "rare", -3.0, {"fresh": 1.0})


@pytest.fixture(scope="module")
def evaluation() -> tuple[list[dict], list[str]]:
    customers = sample_customers(np.random.default_rng(2027), EVAL_CUSTOMERS, prefix="eval")
    return customers, [rfm_segment(c) for c in customers]


@pytest.fixture(scope="module")
def history(world: OfferWorld, rare_offer: WorldOffer) -> list[ShownOffer]:
    rng = np.random.default_rng(2026)
    customers = sample_customers(rng, TRAIN_CUSTOMERS, prefix="train")
    shown = world.history(rng, customers, IMPRESSIONS)
    rare_world = OfferWorld((rare_offer,))
    return shown + rare_world.history(rng, customers, RARE_IMPRESSIONS)


@pytest.fixture(scope="module")
def trained(history):
    started = time.perf_counter()
    fit = fit_propensity(history, seed=11)
    graph, fields = export_propensity(fit, {"impressions": len(history)})
    model = PropensityModel.from_onnx(graph, Manifest(version="test", **fields))
    return fit, graph, fields, model, time.perf_counter() - started


def run_policy(world, customers, segments, propensity_model, settings, seed=5):
    rng = random.Random(seed)
    decisions = []
    for features, segment in zip(customers, segments, strict=True):
        context = CustomerContext(
            features["customer_id"], AS_OF, segment=segment, consent=features["consent"]
        )
        offers = world.specs
        propensity = propensity_model.propensity(features, segment, offers)
        decisions.append(decide(context, offers, propensity, settings, rng))
    return decisions


# --- the world --------------------------------------------------------------------------------


def test_acceptance_follows_the_documented_logistic_formula(world, evaluation):
    customers, _ = evaluation
    features = customers[0]
    for offer in world.offers:
        z = offer.intercept + sum(
            offer.weights.get(name, 0.0) * value
            for name, value in zip(SIGNALS, signals(features), strict=True)
        )
        expected = 1 / (1 + math.exp(-z))
        assert world.accept_probability(features, offer) == pytest.approx(expected)
        assert world.accept_probability(features, offer.offer_id) == pytest.approx(expected)
    P = world.probabilities(customers[:50])
    assert P.shape == (50, len(world.offers))
    assert P[0] == pytest.approx([world.accept_probability(features, o) for o in world.offers])


def test_draws_match_the_known_probability(world, evaluation):
    customers, _ = evaluation
    rng = np.random.default_rng(1)
    features, offer = customers[3], world.offers[2]
    p = world.accept_probability(features, offer)
    share = np.mean([world.draw(rng, features, offer) for _ in range(20000)])
    assert share == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / 20000) + 1e-3)


def test_the_best_offer_differs_across_customers(world, evaluation):
    customers, _ = evaluation
    choices = Counter(world.oracle_choices(customers))
    offered = {o: n for o, n in choices.items() if o is not None}
    assert len(offered) == len(world.offers)
    assert min(offered.values()) > 0.02 * len(customers)
    oracle = world.oracle_value(customers)
    # No single offer comes close to choosing per customer: there is something to learn.
    for j, offer in enumerate(world.offers):
        ev, eligible = world.expected_values(customers), world.eligibility(customers)
        always = [
            offer.offer_id if eligible[i, j] and ev[i, j] > 0 else None
            for i in range(len(customers))
        ]
        assert world.realised_value(customers, always) < 0.6 * oracle
    assert world.random_value(customers) < 0.5 * oracle


def test_oracle_respects_consent_and_skips_worthless_offers(world, evaluation):
    customers, _ = evaluation
    ev, eligible = world.expected_values(customers), world.eligibility(customers)
    index = {o.offer_id: j for j, o in enumerate(world.offers)}
    for i, choice in enumerate(world.oracle_choices(customers)):
        if choice is None:
            assert not (eligible[i] & (ev[i] > 0)).any()
        else:
            assert eligible[i, index[choice]]
            assert ev[i, index[choice]] == pytest.approx(ev[i][eligible[i]].max())


def test_sampled_customers_have_the_feature_shape(evaluation):
    customers, segments = evaluation
    X = feature_matrix(customers)
    assert X.shape == (len(customers), len(MODEL_FEATURES))
    for c in customers[:200]:
        assert set(c["consent"]) == {"email", "sms", "push", "web", "profiling"}
        assert (c["recency_days"] is None) == (c["orders_total"] == 0)
        assert c["orders_30d"] <= c["orders_90d"] <= c["orders_365d"] <= c["orders_total"]
        if c["orders_total"]:
            assert c["aov"] == pytest.approx(c["revenue_total"] / c["orders_total"], abs=0.01)
    assert len(set(segments)) >= 8


def test_uniform_logging_records_its_action_probability(world, evaluation):
    customers, _ = evaluation
    shown = world.history(np.random.default_rng(3), customers, 3000)
    assert len(shown) == 3000
    eligible = world.eligibility(customers)
    by_id = {c["customer_id"]: i for i, c in enumerate(customers)}
    index = {o.offer_id: j for j, o in enumerate(world.offers)}
    for row in shown:
        i = by_id[row.features["customer_id"]]
        assert eligible[i, index[row.offer_id]]
        assert row.action_probability == pytest.approx(1 / eligible[i].sum())
        assert row.segment == rfm_segment(row.features)
    true_p = [world.accept_probability(row.features, row.offer_id) for row in shown]
    assert np.mean([row.accepted for row in shown]) == pytest.approx(np.mean(true_p), abs=0.02)


def test_epsilon_greedy_logging(world, evaluation):
    customers, _ = evaluation
    shown = world.history(
        np.random.default_rng(4),
        customers,
        2000,
        epsilon=0.2,
        greedy=lambda _features, eligible: eligible[0].offer_id,
    )
    for row in shown:
        eligible = [o for o in world.offers if row.features["consent"][o.spec.channel] is True]
        k = len(eligible)
        greedy = row.offer_id == eligible[0].offer_id
        assert row.action_probability == pytest.approx(0.8 * greedy + 0.2 / k)
    assert Counter(row.offer_id == "welcome10" for row in shown)[True] > 0.5 * len(shown)
    with pytest.raises(ValueError):
        world.history(np.random.default_rng(4), customers, 10, epsilon=0.5)


# --- (a) no history: segment priors ------------------------------------------------------------


def test_without_history_the_policy_runs_on_segment_priors(world, evaluation):
    customers, segments = evaluation
    model = PropensityModel.priors_only()
    settings = NboSettings(epsilon=0.05, control_share=0.0)
    decisions = run_policy(world, customers, segments, model, settings)
    reasons = Counter(d.reason for d in decisions)
    assert reasons[BEST_EXPECTED_VALUE] > 0.5 * len(customers)
    assert set(reasons) <= {BEST_EXPECTED_VALUE, EXPLORED, NO_CONSENT, NO_POSITIVE_VALUE}
    for features, segment, d in zip(customers, segments, decisions, strict=True):
        if d.offer is not None:
            assert features["consent"][d.offer.channel] is True
            assert d.propensity == pytest.approx(priors.prior_rate(segment))
    assert model.score(customers[0], None, world.specs) == pytest.approx([priors.DEFAULT_PRIOR] * 5)
    value = world.realised_value(customers, [d.offer_id for d in decisions])
    assert 0 < value < world.oracle_value(customers)


def test_priors_shrink_toward_observed_segment_rates(world, evaluation):
    customers, _ = evaluation
    counts = {"freeship": {"Champions": (30, 100)}}
    model = PropensityModel.priors_only(counts)
    p = model.score(customers[0], "Champions", world.specs)
    assert p[2] == pytest.approx(priors.shrunk_rate(30, 100, priors.prior_rate("Champions")))
    assert p[0] == pytest.approx(priors.prior_rate("Champions"))
    assert model.score(customers[0], "Lost", world.specs)[2] == pytest.approx(
        priors.prior_rate("Lost")
    )


def test_too_little_history_asks_for_priors(history):
    with pytest.raises(ValueError, match="priors"):
        train_propensity(history[:500], seed=1)
    with pytest.raises(ValueError, match="priors"):
        train_propensity(history[:2000], seed=1, min_impressions=5000)


# --- (b) learning from a logged history -------------------------------------------------------


def test_the_model_knows_well_shown_offers_and_falls_back_for_the_rest(trained, world, history):
    fit, _, fields, model, _ = trained
    assert sorted(fit.offers) == sorted(o.offer_id for o in world.offers)
    assert "rare" not in fit.offers
    assert fields["name"] == "nbo"
    assert fields["features"] == input_names(fit.offers)
    impressions = fields["parameters"]["impressions"]
    assert impressions["rare"] == RARE_IMPRESSIONS < MIN_OFFER_IMPRESSIONS
    assert sum(impressions.values()) == len(history)
    assert fields["parameters"]["segment_counts"] == count_outcomes(history)
    # Offers the model does not know get the shrunk segment rate.
    rows = [r for r in history if r.offer_id == "rare" and r.segment == "Lost"]
    rare = OfferSpec("rare", "rare", "web", Decimal(50), Decimal(1))
    new = OfferSpec("brand-new", "new", "web", Decimal(50), Decimal(1))
    p = model.score(history[0].features, "Lost", [*world.specs, rare, new])
    accepted = sum(r.accepted for r in rows)
    assert p[5] == pytest.approx(priors.shrunk_rate(accepted, len(rows), priors.prior_rate("Lost")))
    assert p[6] == pytest.approx(priors.prior_rate("Lost"))
    assert not model.modelled("rare") and model.modelled("freeship")


def test_onnx_matches_the_native_model(trained, evaluation):
    fit, graph, fields, model, _ = trained
    assert fields["metrics"]["onnx_parity_max_abs"] <= onnx_export.PARITY_TOLERANCE
    customers, segments = evaluation
    X = feature_matrix(customers[:500])
    k = len(fit.offers)
    design = design_matrix(np.repeat(X, k, axis=0), np.tile(np.arange(k), len(X)), k)
    native = fit.model.predict(design)
    assert onnx_export.check_parity(graph, design, native) <= onnx_export.PARITY_TOLERANCE
    # The scoring path (one run per batch, offers in any order) gives the same numbers.
    specs = {o: OfferSpec(o, o, "web", Decimal(1), Decimal(0)) for o in fit.offers}
    shuffled = [specs[o] for o in reversed(fit.offers)]
    scored = model.score_many(customers[:500], segments[:500], shuffled)
    expected = native.reshape(len(X), k)[:, ::-1]
    assert np.max(np.abs(scored - expected)) <= onnx_export.PARITY_TOLERANCE
    assert model.score(customers[7], segments[7], shuffled) == pytest.approx(
        scored[7].tolist(), abs=1e-7
    )


def test_predictions_are_calibrated(trained, world, evaluation):
    _, _, fields, model, _ = trained
    metrics = fields["metrics"]
    assert metrics["mean_predicted"] == pytest.approx(metrics["acceptance_rate"], abs=0.01)
    assert metrics["auc"] > 0.7
    customers, segments = evaluation
    shown = world.history(np.random.default_rng(9), customers, 10000, segments=segments)
    index = {o.offer_id: j for j, o in enumerate(world.offers)}
    P = model.score_many([r.features for r in shown], [r.segment for r in shown], world.specs)
    predicted = P[np.arange(len(shown)), [index[r.offer_id] for r in shown]]
    accepted = np.array([r.accepted for r in shown], dtype=float)
    true_p = np.array([world.accept_probability(r.features, r.offer_id) for r in shown])
    assert predicted.mean() == pytest.approx(accepted.mean(), abs=0.01)
    assert predicted.mean() == pytest.approx(true_p.mean(), abs=0.01)
    for offer in world.offers:
        mask = np.array([r.offer_id == offer.offer_id for r in shown])
        assert predicted[mask].mean() == pytest.approx(true_p[mask].mean(), abs=0.02)
        # The model ranks customers for each offer (the true p varies a lot across customers).
        assert np.corrcoef(predicted[mask], true_p[mask])[0, 1] > 0.6


def test_learnt_policy_is_within_ten_percent_of_the_oracle(trained, world, evaluation):
    _, _, _, model, train_seconds = trained
    customers, segments = evaluation
    oracle = world.oracle_value(customers)
    random_value = world.random_value(customers)
    priors_policy = run_policy(
        world,
        customers,
        segments,
        PropensityModel.priors_only(),
        NboSettings(epsilon=0.0, control_share=0.0),
    )
    priors_value = world.realised_value(customers, [d.offer_id for d in priors_policy])

    started = time.perf_counter()
    decisions = run_policy(
        world, customers, segments, model, NboSettings(epsilon=0.02, control_share=0.0)
    )
    per_decision = (time.perf_counter() - started) / len(customers)
    learnt = world.realised_value(customers, [d.offer_id for d in decisions])
    print(
        f"\noracle {oracle:.3f}  learnt {learnt:.3f} ({learnt / oracle:.1%})  "
        f"priors {priors_value:.3f} ({priors_value / oracle:.1%})  "
        f"random {random_value:.3f} ({random_value / oracle:.1%})  "
        f"train {train_seconds:.1f}s  decide {per_decision * 1e6:.0f}us"
    )
    assert learnt >= 0.9 * oracle
    assert learnt <= oracle + 1e-9
    assert learnt > 1.5 * random_value
    assert learnt > 1.5 * priors_value
    assert Counter(d.reason for d in decisions)[BEST_EXPECTED_VALUE] > 0.8 * len(customers)
    assert per_decision < 0.02  # one ONNX run per decision; ~0.1 ms on a laptop


def test_saved_artifact_scores_identically(trained, evaluation, tmp_path):
    _, graph, fields, model, _ = trained
    folder = Artifact(Manifest(version="v1", **fields), graph.SerializeToString()).save(tmp_path)
    artifact = Artifact.load(folder)
    reloaded = PropensityModel.from_onnx(artifact.graph, artifact.manifest)
    assert reloaded.version == "v1"
    customers, segments = evaluation
    specs = default_world().specs
    assert np.array_equal(
        reloaded.score_many(customers[:100], segments[:100], specs),
        model.score_many(customers[:100], segments[:100], specs),
    )


def test_a_mismatched_manifest_is_refused(trained):
    _, graph, fields, _, _ = trained
    broken = {**fields, "features": fields["features"][:-1]}
    with pytest.raises(ValueError):
        PropensityModel.from_onnx(graph, Manifest(version="x", **broken))


def test_world_module_documents_every_signal():
    doc = world_module.__doc__ or ""
    assert all(f"`{name}`" in doc for name in SIGNALS)
