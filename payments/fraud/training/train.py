"""Train a risk model version on labelled payments: time-based split, two candidates, the
better by average precision on the holdout, stored with its metrics (audited).

The split follows the card-fraud literature: train on the earlier weeks, leave a gap (the
delay before fraud is known: chargebacks arrive days later) and test on the last week.
Both candidates are seeded: the same payments and seed give the same model (a test checks).
"""

from __future__ import annotations

import datetime
import hashlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from audit import SYSTEM, record
from payments.exceptions import FraudModelRefused
from payments.fraud.features.offline import PastPayment
from payments.fraud.models import FraudModelVersion, RiskSettings
from payments.fraud.training.dataset import Dataset, build_dataset
from payments.fraud.training.metrics import evaluate, threshold_table
from security.actors import Actor

MIN_FRAUD = 5  # in the training part and in the holdout each
# A missing feature value for the gradient-boosting trees: below every value a feature takes
# (amounts, counts, ages, z-scores and ratios are far above it).
MISSING = -1e12
ALGORITHMS = ("gradient_boosting", "logistic_regression")


@dataclass(frozen=True)
class Split:
    train_from: datetime.datetime
    train_until: datetime.datetime
    test_from: datetime.datetime
    test_until: datetime.datetime


def time_split(times: list[datetime.datetime], *, test_days: int = 7, gap_days: int = 7) -> Split:
    """Test on the last ``test_days``; train on what is older than ``gap_days`` before that."""
    if not times:
        raise FraudModelRefused("no labelled payments to train on", field="payments")
    test_until = max(times) + datetime.timedelta(microseconds=1)
    test_from = test_until - datetime.timedelta(days=test_days)
    return Split(
        train_from=min(times),
        train_until=test_from - datetime.timedelta(days=gap_days),
        test_from=test_from,
        test_until=test_until,
    )


def candidate(algorithm: str, seed: int) -> Any:
    """A fresh, seeded estimator of ``algorithm``."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if algorithm == "gradient_boosting":
        # Scored in every card payment by payments.fraud.trees (the fitted trees as arrays,
        # about 0.3 ms a prediction with its reasons, against 1-2 ms for scikit-learn's own
        # predict_proba): scikit-learn's classic gradient boosting, whose trees are public,
        # not the histogram one (docs/decisions.md, 79). Its trees take no missing values:
        # a missing one becomes MISSING, below every real value, so a split can single it
        # out as the histogram trees did. Depth 3, at most 120 trees, each on a seeded 80 %
        # of the rows; fewer when 15 % of the training rows (drawn with the seed) stop
        # improving for 10 trees (docs/fraud.md, "Training").
        return make_pipeline(
            SimpleImputer(strategy="constant", fill_value=MISSING, keep_empty_features=True),
            GradientBoostingClassifier(
                learning_rate=0.1,
                n_estimators=120,
                max_depth=3,
                subsample=0.8,
                validation_fraction=0.15,
                n_iter_no_change=10,
                random_state=seed,
            ),
        )
    if algorithm == "logistic_regression":
        # Amounts and counts are heavy-tailed: asinh is a signed logarithm (numpy's, so the
        # stored model refers to no code of ours).
        return make_pipeline(
            FunctionTransformer(np.arcsinh),
            SimpleImputer(strategy="median", add_indicator=True),
            StandardScaler(),
            LogisticRegression(C=0.5, max_iter=3000, random_state=seed),
        )
    raise FraudModelRefused(f"unknown algorithm {algorithm!r}", field="algorithm")


def serialize(artefact: dict[str, Any]) -> tuple[bytes, str]:
    """The artefact as joblib bytes and their SHA-256 (decision: docs/decisions.md)."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump(artefact, buffer, compress=3)
    blob = buffer.getvalue()
    return blob, hashlib.sha256(blob).hexdigest()


def holdout_bytes(test: Dataset) -> bytes:
    """The holdout as numpy .npz (no pickles): features, labels and column names."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, matrix=test.matrix, labels=test.labels, features=np.array(test.features, dtype=str)
    )
    return buffer.getvalue()


def read_holdout(blob: bytes) -> tuple[np.ndarray, np.ndarray, list[str]]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return data["matrix"], data["labels"], [str(name) for name in data["features"]]


def typical_row(matrix: np.ndarray) -> np.ndarray:
    """Each column's median over its known values (0 for a column never known): the
    reference the score's explanation compares each feature with."""
    typical = np.zeros(matrix.shape[1])
    for j in range(matrix.shape[1]):
        known = matrix[:, j][~np.isnan(matrix[:, j])]
        if known.size:
            typical[j] = float(np.median(known))
    return typical


def _thresholds() -> tuple[int, int]:
    row = RiskSettings.objects.filter(pk=RiskSettings.SINGLETON_PK).first()
    if row is None:
        return 65, 75
    return row.review_score, row.block_score


def train_model_version(
    payments: Iterable[PastPayment],
    *,
    source: str,
    seed: int = 7,
    top_k: int = 100,
    test_days: int = 7,
    gap_days: int = 7,
    by: Actor = SYSTEM,
    progress: Callable[[str], None] | None = None,
) -> FraudModelVersion:
    """Train both candidates on the labelled payments, keep the one with the higher average
    precision on the holdout week, and store it as a new version (not live: a fraud analyst
    promotes it). Audited ``fraud.model_trained``."""
    say = progress or (lambda _message: None)
    say("computing features (offline, in time order)")
    data = build_dataset(payments, progress=progress)
    split = time_split(data.times, test_days=test_days, gap_days=gap_days)
    times = np.array([t.timestamp() for t in data.times])
    train = data.subset(times < split.train_until.timestamp())
    test = data.subset(times >= split.test_from.timestamp())
    for part, name in ((train, "training weeks"), (test, "holdout week")):
        if int(part.labels.sum()) < MIN_FRAUD or int((part.labels == 0).sum()) < MIN_FRAUD:
            raise FraudModelRefused(
                f"too few labelled payments in the {name}: at least {MIN_FRAUD} fraud and"
                f" {MIN_FRAUD} good are needed, there are {int(part.labels.sum())} fraud and"
                f" {int((part.labels == 0).sum())} good",
                field="payments",
            )
    say(
        f"training on {len(train.labels):,} payments ({int(train.labels.sum())} fraud), "
        f"testing on {len(test.labels):,} ({int(test.labels.sum())} fraud)"
    )
    review_score, block_score = _thresholds()
    results = {}
    for algorithm in ALGORITHMS:
        estimator = candidate(algorithm, seed)
        estimator.fit(train.matrix, train.labels)
        probabilities = estimator.predict_proba(test.matrix)[:, 1]
        metrics = evaluate(
            test.labels,
            probabilities,
            cards=test.cards,
            times=test.times,
            scenarios=test.scenarios,
            top_k=top_k,
            block_score=block_score,
            review_score=review_score,
        )
        results[algorithm] = (estimator, probabilities, metrics)
        say(
            f"  {algorithm}: AP {metrics['average_precision']:.3f},"
            f" ROC AUC {metrics['roc_auc']:.3f}"
        )
    chosen = max(ALGORITHMS, key=lambda name: results[name][2]["average_precision"])
    estimator, probabilities, metrics = results[chosen]
    metrics["candidates"] = {
        name: {
            "average_precision": results[name][2]["average_precision"],
            "roc_auc": results[name][2]["roc_auc"],
        }
        for name in ALGORITHMS
    }
    say(f"chosen: {chosen}")
    reference = typical_row(train.matrix)
    blob, sha256 = serialize(
        {"estimator": estimator, "features": data.features, "reference": reference.tolist()}
    )
    scores = np.minimum(99, (probabilities * 100).astype(int))
    with transaction.atomic():
        version = FraudModelVersion.objects.create(
            algorithm=chosen,
            features=data.features,
            seed=seed,
            source=source[:200],
            train_from=split.train_from,
            train_until=split.train_until,
            test_from=split.test_from,
            test_until=split.test_until,
            rows_train=len(train.labels),
            rows_test=len(test.labels),
            metrics=metrics,
            threshold_table=threshold_table(test.labels, scores),
            model_bytes=blob,
            model_sha256=sha256,
            holdout_bytes=holdout_bytes(test),
            created_at=timezone.now(),
        )
        record(
            "fraud.model_trained",
            actor=by,
            obj=version,
            algorithm=chosen,
            source=version.source,
            random_state=seed,
            # Figures as text: the audit log holds no floats.
            average_precision=f"{metrics['average_precision']:.4f}",
            roc_auc=f"{metrics['roc_auc']:.4f}",
            model_sha256=sha256,
        )
    return version
