"""The trained trees as arrays (payments.fraud.trees): the same probabilities as
scikit-learn's, or no compiled model at all."""

from __future__ import annotations

import numpy as np
import pytest

from payments.fraud import scoring
from payments.fraud.training.train import candidate
from payments.fraud.trees import compile_ensemble


def _data(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Rows with missing values, negative values and a wide range, a label that depends on
    several columns (missing included)."""
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(600, 6)) * np.array([1, 10, 1000, 0.01, 5, 1e6])
    matrix[rng.random(matrix.shape) < 0.15] = np.nan
    labels = ((np.nan_to_num(matrix[:, 0]) > 0.5) | np.isnan(matrix[:, 3])).astype(int)
    labels[rng.random(len(labels)) < 0.05] ^= 1
    return matrix, labels


def test_the_compiled_trees_score_as_scikit_learn_does() -> None:
    matrix, labels = _data()
    estimator = candidate("gradient_boosting", 7).fit(matrix, labels)
    compiled = compile_ensemble(estimator, np.nanmedian(matrix, axis=0))
    assert compiled is not None
    fresh, _ = _data(seed=11)
    expected = estimator.predict_proba(fresh)[:, 1]
    assert np.abs(compiled.probabilities(fresh) - expected).max() <= 1e-12
    # Exactly on the thresholds (scikit-learn compares 32-bit floats): the same side.
    on_threshold = np.repeat(fresh[:1], len(compiled.threshold), axis=0)
    splits = np.isfinite(compiled.threshold)
    on_threshold[np.flatnonzero(splits), compiled.feature[splits]] = compiled.threshold[splits]
    assert np.allclose(
        compiled.probabilities(on_threshold),
        estimator.predict_proba(on_threshold)[:, 1],
        rtol=0,
        atol=1e-12,
    )


@pytest.mark.parametrize("algorithm", ["logistic_regression"])
def test_a_model_the_arrays_do_not_cover_keeps_scikit_learns_prediction(algorithm: str) -> None:
    matrix, labels = _data()
    estimator = candidate(algorithm, 7).fit(matrix, labels)
    assert compile_ensemble(estimator, np.nanmedian(matrix, axis=0)) is None


def test_the_histogram_trees_of_earlier_versions_keep_scikit_learns_prediction() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    matrix, labels = _data()
    estimator = HistGradientBoostingClassifier(max_iter=10, random_state=1).fit(matrix, labels)
    assert compile_ensemble(estimator, np.nanmedian(matrix, axis=0)) is None


def test_trees_that_score_otherwise_than_scikit_learn_are_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The probe rows are checked: arrays that would give another probability are
    refused (here a leaf value changed after fitting, as a broken copy would be)."""
    from payments.fraud import trees

    matrix, labels = _data()
    estimator = candidate("gradient_boosting", 7).fit(matrix, labels)
    flatten = trees._flatten

    def broken(booster: object, fill: np.ndarray) -> trees.CompiledEnsemble:
        compiled = flatten(booster, fill)
        value = compiled.value.copy()
        value[np.flatnonzero(value)] += 0.01  # every leaf a little off
        return trees.CompiledEnsemble(**{**compiled.__dict__, "value": value})

    monkeypatch.setattr(trees, "_flatten", broken)
    assert compile_ensemble(estimator, np.nanmedian(matrix, axis=0)) is None


def test_the_reasons_are_those_of_every_feature_set_to_its_typical_value() -> None:
    """Only the features off their typical value are scored again: the same reasons as
    scoring every feature at its typical value one at a time."""
    matrix, labels = _data()
    estimator = candidate("gradient_boosting", 7).fit(matrix, labels)
    reference = np.nanmedian(matrix, axis=0)
    names = [f"f{j}" for j in range(matrix.shape[1])]
    model = scoring.LoadedModel(
        pk=1,
        sha256="x",
        features=names,
        estimator=estimator,
        reference=reference,
        compiled=compile_ensemble(estimator, reference),
    )
    for row in matrix[:40]:
        row = row.copy()
        row[1] = reference[1]  # one feature at its typical value already
        probability, reasons = scoring.predict_with_reasons(model, row[None, :])
        every = np.repeat(row[None, :], len(names), axis=0)
        every[np.arange(len(names)), np.arange(len(names))] = reference
        contributions = probability - estimator.predict_proba(every)[:, 1]
        expected = [
            (names[j], round(float(contributions[j]), 4))
            for j in np.argsort(-contributions)[: scoring.TOP_FEATURES]
            if contributions[j] > 1e-12  # scikit-learn's sums differ by rounding only
        ]
        assert probability == pytest.approx(estimator.predict_proba(row[None, :])[0, 1], abs=1e-12)
        assert [name for name, _ in reasons] == [name for name, _ in expected]
        assert [value for _, value in reasons] == pytest.approx([v for _, v in expected], abs=1e-4)
