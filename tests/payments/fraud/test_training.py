"""Training, metrics, promotion and the live score: reproducible, right on a hand-made set,
never a worse model by accident, never a tampered one, only by a fraud analyst."""

from __future__ import annotations

import datetime

import numpy as np
import pytest
from django.conf import settings
from django.contrib.auth.models import Group

from audit import SYSTEM
from payments.exceptions import FraudModelRefused
from payments.fraud import scoring
from payments.fraud.models import FraudModelVersion
from payments.fraud.scoring import score
from payments.fraud.training import promote_model_version, train_model_version
from payments.fraud.training.metrics import (
    card_precision_top_k,
    evaluate,
    precision_at_recall,
    threshold_table,
)
from payments.fraud.training.train import serialize
from security.models import User
from security.roles import ROLE_NAMES
from security.selectors import MFA_VERIFIED_AT_KEY
from tests.factories import audit_events, make_user
from tests.mfa_helpers import stepped_up_request
from tests.payments.fraud.helpers import constant_version

pytestmark = pytest.mark.django_db


def test_training_is_reproducible_with_the_seed(small_payments: list) -> None:
    first = train_model_version(small_payments, source="test", seed=5)
    again = train_model_version(small_payments, source="test", seed=5)
    assert first.algorithm == again.algorithm
    assert first.metrics == again.metrics
    assert first.model_sha256 == again.model_sha256
    assert (first.train_until, first.test_from) == (again.train_until, again.test_from)
    assert first.test_from - first.train_until == datetime.timedelta(days=7)
    assert audit_events("fraud.model_trained", first)[0].details["model_sha256"] == (
        first.model_sha256
    )


def test_a_version_holds_its_features_window_metrics_and_threshold_table(
    trained: FraudModelVersion,
) -> None:
    assert trained.algorithm in ("gradient_boosting", "logistic_regression")
    assert "card_attempts_1h" in trained.features and "card_country" not in trained.features
    metrics = trained.metrics
    for name in ("average_precision", "roc_auc", "precision_at_50_recall", "card_precision_top_k"):
        assert 0 <= metrics[name] <= 1
    assert set(metrics["candidates"]) == {"gradient_boosting", "logistic_regression"}
    assert metrics["average_precision"] == max(
        c["average_precision"] for c in metrics["candidates"].values()
    )
    assert [row["score"] for row in trained.threshold_table] == list(range(5, 100, 5))
    assert not trained.live


def test_the_metrics_on_a_hand_made_holdout() -> None:
    labels = np.array([1, 0, 1, 0, 0])
    probabilities = np.array([0.9, 0.8, 0.7, 0.1, 0.2])
    day = datetime.datetime(2026, 11, 2, 10, tzinfo=datetime.UTC)
    times = [day, day, day, day + datetime.timedelta(days=1), day + datetime.timedelta(days=1)]
    cards = ["a", "b", "c", "d", "e"]
    metrics = evaluate(
        labels,
        probabilities,
        cards=cards,
        times=times,
        scenarios=["x", "", "y", "", ""],
        top_k=2,
        block_score=75,
        review_score=65,
    )
    assert metrics["average_precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert metrics["roc_auc"] == pytest.approx(5 / 6)
    assert precision_at_recall(labels, probabilities, 0.5) == 1.0
    assert precision_at_recall(labels, probabilities, 0.8) == pytest.approx(2 / 3)
    # Day 1: top 2 cards a (fraud), b (good) -> 1/2; day 2: e, d, no fraud -> 0.
    assert card_precision_top_k(labels, probabilities, cards, times, 2) == pytest.approx(0.25)
    assert metrics["false_blocks"] == 1 and metrics["false_block_rate"] == pytest.approx(1 / 3)
    assert metrics["recall_per_scenario"]["x"]["recall_at_block"] == 1.0
    assert metrics["recall_per_scenario"]["y"]["recall_at_block"] == 0.0
    assert metrics["recall_per_scenario"]["y"]["recall_at_review"] == 1.0
    at_75 = next(
        row for row in threshold_table(labels, np.array([90, 80, 70, 10, 20])) if row["score"] == 75
    )
    assert at_75 == {
        "score": 75,
        "flagged": 2,
        "fraud_caught": 1,
        "recall": 0.5,
        "precision": 0.5,
        "good_flagged": 1,
        "good_flagged_rate": pytest.approx(1 / 3, abs=1e-5),
    }


def test_too_few_labelled_payments_refuse_training(small_payments: list) -> None:
    good_only = [p for p in small_payments if p.label == "good"]
    with pytest.raises(FraudModelRefused, match="too few labelled payments"):
        train_model_version(good_only, source="test")


def test_no_score_until_a_version_is_live_then_the_live_ones(
    trained: FraudModelVersion, analyst: User, small_payments: list
) -> None:
    from payments.fraud.features import stream_features

    features = [f for p, f in stream_features(small_payments) if p.label == "fraud"][-1]
    assert score(features) is None
    promote_model_version(trained, by=analyst, request=stepped_up_request(analyst))
    result = score(features)
    assert result is not None and result.model_version == trained.pk
    assert 0 <= result.score <= 99
    assert all(name in trained.features and lift > 0 for name, lift in result.top_features)
    event = audit_events("fraud.model_promoted", trained)[0]
    assert event.details["override"] is False and event.details["previous_version"] is None


def test_a_worse_version_is_refused_without_an_override_and_a_reason(
    trained: FraudModelVersion, analyst: User
) -> None:
    promote_model_version(trained, by=analyst, request=stepped_up_request(analyst))
    worse = constant_version(trained)
    with pytest.raises(FraudModelRefused, match="does worse") as refused:
        promote_model_version(worse, by=analyst, request=stepped_up_request(analyst))
    assert refused.value.field == "override"
    with pytest.raises(FraudModelRefused) as no_reason:
        promote_model_version(
            worse, by=analyst, request=stepped_up_request(analyst), override=True, reason="  "
        )
    assert no_reason.value.field == "reason"
    assert FraudModelVersion.objects.get(live=True) == trained
    assert not audit_events("fraud.model_promoted", worse)

    promote_model_version(
        worse,
        by=analyst,
        request=stepped_up_request(analyst),
        override=True,
        reason="the old one drifts",
    )
    assert FraudModelVersion.objects.get(live=True) == worse
    event = audit_events("fraud.model_promoted", worse)[0]
    assert event.details["override"] is True and event.details["worse_than_live"] is True
    assert event.details["reason"] == "the old one drifts"
    assert event.details["previous_version"] == trained.pk


def test_a_stored_model_whose_hash_does_not_match_is_never_loaded(
    trained: FraudModelVersion, analyst: User, small_payments: list
) -> None:
    tampered = bytes(trained.model_bytes)[:-1] + b"\x00"
    FraudModelVersion.objects.filter(pk=trained.pk).update(model_bytes=tampered)
    trained.refresh_from_db()
    with pytest.raises(FraudModelRefused, match="SHA-256"):
        promote_model_version(trained, by=analyst, request=stepped_up_request(analyst))
    assert not FraudModelVersion.objects.filter(live=True).exists()
    # Made live behind the service's back: the score refuses it too.
    FraudModelVersion.objects.filter(pk=trained.pk).update(live=True)
    scoring._loaded = None
    with pytest.raises(FraudModelRefused, match="SHA-256"):
        score({})


def test_the_live_model_is_loaded_again_when_the_live_version_changes(
    trained: FraudModelVersion, analyst: User
) -> None:
    promote_model_version(trained, by=analyst, request=stepped_up_request(analyst))
    first = scoring.live_model()
    assert first is scoring.live_model()  # loaded once
    # Gradient boosting is scored from its trees as arrays (payments.fraud.trees).
    assert first is not None
    assert (first.compiled is not None) == (trained.algorithm == "gradient_boosting")
    worse = constant_version(trained)
    promote_model_version(
        worse, by=analyst, request=stepped_up_request(analyst), override=True, reason="test"
    )
    reloaded = scoring.live_model()
    assert reloaded is not None and reloaded.pk == worse.pk


@pytest.fixture
def untrained() -> FraudModelVersion:
    """A version stored without training (the permission is checked before anything else)."""
    at = datetime.datetime(2026, 11, 2, tzinfo=datetime.UTC)
    blob, sha256 = serialize({"estimator": None, "features": [], "reference": []})
    return FraudModelVersion.objects.create(
        algorithm="none", features=[], seed=1, source="test", train_from=at, train_until=at,
        test_from=at, test_until=at, rows_train=0, rows_test=0, model_bytes=blob,
        model_sha256=sha256, holdout_bytes=b"", created_at=at,
    )  # fmt: skip


@pytest.mark.parametrize("role", [r for r in ROLE_NAMES if r != "Fraud analyst"])
def test_only_a_fraud_analyst_promotes_a_model(untrained: FraudModelVersion, role: str) -> None:
    user = make_user(f"user-{role.replace(' ', '-').lower()}", is_staff=role != "Customer")
    user.groups.add(Group.objects.get(name=role))
    user = User.objects.get(pk=user.pk)
    with pytest.raises(FraudModelRefused, match="permission"):
        promote_model_version(untrained, by=user)
    assert not FraudModelVersion.objects.filter(live=True).exists()


def test_an_analyst_without_a_fresh_second_factor_cannot_promote(
    trained: FraudModelVersion, analyst: User
) -> None:
    stale = stepped_up_request(analyst)
    stale.session[MFA_VERIFIED_AT_KEY] -= settings.SECURITY_STEP_UP_SECONDS + 1
    for request in (None, stale):
        with pytest.raises(FraudModelRefused, match="step-up") as refused:
            promote_model_version(trained, by=analyst, request=request)
        assert refused.value.field == "step_up"
    assert not FraudModelVersion.objects.filter(live=True).exists()
    assert not audit_events("fraud.model_promoted", trained)


def test_the_platform_itself_promotes_without_a_person_audited_as_system(
    trained: FraudModelVersion,
) -> None:
    promote_model_version(trained, by=SYSTEM, reason="demo installation")
    trained.refresh_from_db()
    assert trained.live and trained.promoted_by is None
    event = audit_events("fraud.model_promoted", trained)[0]
    assert event.actor_type == "system" and event.details["reason"] == "demo installation"
