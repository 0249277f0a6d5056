"""The learned risk score (0-99) of an attempt's features, by the live model version.

The live ``FraudModelVersion`` is loaded once per process and loaded again when the live
version changes: each score first reads the live version's id and SHA-256 (one indexed
row; the engine reads it with its rules, ``rule_selectors.engine_reads``), and a stored
model whose bytes do not hash to its SHA-256 is never unpickled (``FraudModelRefused``).
``top_features`` explain the score: how much each feature moved the probability away
from the training set's typical payment (its medians).
"""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import Subquery

from db.compiled import compiled
from payments.exceptions import FraudModelRefused
from payments.fraud.models import FraudModelVersion, RiskSettings
from payments.fraud.trees import CompiledEnsemble, compile_ensemble

TOP_FEATURES = 3


@dataclass(frozen=True)
class ScoreResult:
    """The score (0-99), the model version that gave it, the features that raised it most,
    and the thresholds it is held against (``RiskSettings``, read with the live version)."""

    score: int
    model_version: int
    top_features: list[tuple[str, float]]
    review_score: int
    block_score: int


@dataclass(frozen=True)
class LoadedModel:
    pk: int
    sha256: str
    features: list[str]
    estimator: Any
    reference: np.ndarray
    # The trees as arrays (payments.fraud.trees), None for a model they do not cover (a
    # version trained before them, logistic regression): scikit-learn then predicts.
    compiled: CompiledEnsemble | None = None

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """The fraud probability of each row of ``matrix`` (columns in ``features`` order)."""
        if self.compiled is not None:
            return self.compiled.probabilities(matrix)
        result: np.ndarray = self.estimator.predict_proba(matrix)[:, 1]
        return result


def vectorize(rows: list[dict[str, Any]], names: list[str]) -> np.ndarray:
    """The model's matrix: one row per features dict, columns in ``names`` order; a bool is
    0/1 and a missing value (None) NaN."""
    matrix = np.full((len(rows), len(names)), np.nan, dtype=np.float64)
    for i, row in enumerate(rows):
        for j, name in enumerate(names):
            value = row.get(name)
            if value is not None:
                matrix[i, j] = float(value)
    return matrix


def to_score(probability: float) -> int:
    """A fraud probability as the 0-99 score: the whole percent, 99 at most."""
    return min(99, max(0, int(probability * 100)))


def verified_bytes(blob: bytes, sha256: str) -> bytes:
    """``blob`` if it hashes to ``sha256``; FraudModelRefused otherwise (never unpickled)."""
    if hashlib.sha256(blob).hexdigest() != sha256:
        raise FraudModelRefused(
            "the stored fraud model does not match its SHA-256: refused", field="model_bytes"
        )
    return blob


def load_artefact(blob: bytes, sha256: str) -> dict[str, Any]:
    """The trained artefact (estimator, feature names, reference row) of verified bytes."""
    import joblib

    artefact = joblib.load(io.BytesIO(verified_bytes(blob, sha256)))
    if not isinstance(artefact, dict) or "estimator" not in artefact:
        raise FraudModelRefused("the stored fraud model is not an artefact of this project")
    return artefact


# Read in every card payment, with the score thresholds (one statement): compiled by the
# ORM once per process (db.compiled).
@compiled()
def _live_version() -> Any:
    thresholds = RiskSettings.objects.order_by("pk")
    return (
        FraudModelVersion.objects.filter(live=True)
        .order_by("pk")
        .values("pk", "model_sha256")
        .annotate(
            review_score=Subquery(thresholds.values("review_score")[:1]),
            block_score=Subquery(thresholds.values("block_score")[:1]),
        )[:1]
    )


_lock = threading.Lock()
_loaded: LoadedModel | None = None


def _one_thread() -> None:
    """Score on one thread in this process: scoring one attempt is a small prediction, and
    OpenMP's worker threads competing for the cores with the web workers cost far more than
    they save (gradient boosting: 490 ms against 22 ms per prediction on a busy 2-core
    machine; docs/fraud.md)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="openmp")


def live_model() -> LoadedModel | None:
    """The live model version, loaded once per process and again when the live one changes."""
    live = live_version()
    return _load(live["pk"], live["model_sha256"]) if live is not None else None


def _load(pk: int, sha256: str) -> LoadedModel:
    global _loaded
    current = _loaded
    if current is not None and (current.pk, current.sha256) == (pk, sha256):
        return current
    with _lock:
        _one_thread()
        row = FraudModelVersion.objects.values("model_bytes", "model_sha256").get(pk=pk)
        artefact = load_artefact(bytes(row["model_bytes"]), row["model_sha256"])
        reference = np.asarray(artefact["reference"], dtype=np.float64)
        _loaded = LoadedModel(
            pk=pk,
            sha256=row["model_sha256"],
            features=list(artefact["features"]),
            estimator=artefact["estimator"],
            reference=reference,
            compiled=compile_ensemble(artefact["estimator"], reference),
        )
        return _loaded


def predict_with_reasons(
    model: LoadedModel, row: np.ndarray
) -> tuple[float, list[tuple[str, float]]]:
    """The probability of ``row`` and the features that raised it most: for each feature,
    the probability with it set to the reference (typical) value, subtracted from the
    probability as scored. One prediction of 1 + the features whose value is not the
    typical one already (the others changed nothing: their contribution is 0)."""
    reference = model.reference
    differs = np.flatnonzero(~((row[0] == reference) | (np.isnan(row[0]) & np.isnan(reference))))
    changed = np.repeat(row, len(differs) + 1, axis=0)
    changed[np.arange(1, len(differs) + 1), differs] = reference[differs]
    probabilities = model.probabilities(changed)
    probability = float(probabilities[0])
    contributions = np.zeros(len(model.features))
    contributions[differs] = probability - probabilities[1:]
    order = np.argsort(-contributions)[:TOP_FEATURES]
    return probability, [
        (model.features[j], round(float(contributions[j]), 4))
        for j in order
        if contributions[j] > 0
    ]


def live_version() -> dict[str, Any] | None:
    """The live model version's id (``pk``) and ``model_sha256`` with the score thresholds
    (``review_score``, ``block_score``: None while no row of thresholds is stored); None
    when no version is live. One statement."""
    row: dict[str, Any] | None = _live_version.first()
    return row


def score(features: dict[str, Any]) -> ScoreResult | None:
    """The live model's score of ``features`` (from ``attempt_features``) with the score
    thresholds; None when no model version is live."""
    return score_with(features, live_version())


def score_with(features: dict[str, Any], live: dict[str, Any] | None) -> ScoreResult | None:
    """``score`` with the live version as read already (``live_version``, or the engine's
    reads: ``rule_selectors.engine_reads``)."""
    if live is None:
        return None
    model = _load(live["pk"], live["model_sha256"])
    probability, reasons = predict_with_reasons(model, vectorize([features], model.features))
    default = RiskSettings()  # while no row of thresholds is stored
    return ScoreResult(
        score=to_score(probability),
        model_version=model.pk,
        top_features=reasons,
        review_score=default.review_score if live["review_score"] is None else live["review_score"],
        block_score=default.block_score if live["block_score"] is None else live["block_score"],
    )
