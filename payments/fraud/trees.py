"""A trained gradient-boosting model as flat arrays, scored with a few numpy operations.

Every card payment waits for one prediction of 1 + n rows (the score and its reasons:
``scoring.predict_with_reasons``). scikit-learn's own ``predict_proba`` checks its input
and walks the trees one call at a time: a fixed 1-2 ms per prediction, most of the fraud
engine's cost (docs/fraud.md, "Cost"). This module reads the fitted trees through
scikit-learn's public tree structure (``estimators_`` and each tree's ``tree_``: node
features, thresholds, children and values, as scikit-learn's user guide documents them)
into one set of arrays, and walks every row down every tree at once, one level per step:
about 0.3 ms for 61 rows and 100 trees of depth 3.

Exactness is checked, not assumed: ``compile_ensemble`` scores probe rows both ways and
gives None (the caller keeps scikit-learn's ``predict_proba``) for any model it does not
know or whose probabilities differ by more than ``TOLERANCE``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

TOLERANCE = 1e-9
# Probe rows scaled from the reference row: below, at and past the usual values, negative
# and missing, so that every branch direction of most splits is taken at least once.
_PROBE_SCALES = (0.0, 0.5, 1.0, 2.0, 10.0, 1000.0, -1.0)


@dataclass(frozen=True)
class CompiledEnsemble:
    """Every tree's nodes in one set of arrays (a leaf points to itself and holds its value
    times the learning rate; a split node holds 0), each tree's root, the depth to walk, the
    values that stand for a missing one (the imputer's), and the constant raw score."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    depth: int
    fill: np.ndarray
    offset: float

    def raw(self, matrix: np.ndarray) -> np.ndarray:
        """The log-odds of each row: as scikit-learn compares, in 32-bit floats."""
        rows = np.where(np.isnan(matrix), self.fill, matrix).astype(np.float32)
        rows = rows.astype(np.float64)
        index = np.arange(len(rows))[:, None]
        node = np.broadcast_to(self.roots, (len(rows), len(self.roots)))
        for _ in range(self.depth):
            goes_left = rows[index, self.feature[node]] <= self.threshold[node]
            node = np.where(goes_left, self.left[node], self.right[node])
        result: np.ndarray = self.offset + self.value[node].sum(axis=1)
        return result

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """The fraud probability of each row (the logistic function of its log-odds)."""
        result: np.ndarray = 1.0 / (1.0 + np.exp(-self.raw(matrix)))
        return result


def compile_ensemble(estimator: Any, reference: np.ndarray) -> CompiledEnsemble | None:
    """The estimator as a ``CompiledEnsemble`` if it is what training makes (a constant
    ``SimpleImputer`` then a binary ``GradientBoostingClassifier``) and scores the probe rows
    as scikit-learn does; else None."""
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    if not isinstance(estimator, Pipeline) or len(estimator.steps) != 2:
        return None
    imputer, booster = (step for _name, step in estimator.steps)
    reference = np.asarray(reference, dtype=np.float64)
    if not (
        isinstance(imputer, SimpleImputer)
        and imputer.strategy == "constant"
        and not imputer.add_indicator
        and len(imputer.statistics_) == len(reference)
        and isinstance(booster, GradientBoostingClassifier)
        and booster.loss == "log_loss"
        and len(booster.classes_) == 2
        and booster.estimators_.shape[1] == 1
    ):
        return None
    init = booster.init_
    if not (isinstance(init, DummyClassifier) and init.strategy == "prior"):
        return None
    # The constant raw score every tree adds to: the log-odds of the training set's fraud
    # rate (the prior scikit-learn starts from, by default).
    prior = float(init.class_prior_[1])
    trees = _flatten(booster, np.asarray(imputer.statistics_, dtype=np.float64))
    compiled = dataclasses.replace(trees, offset=float(np.log(prior / (1.0 - prior))))
    probes = _probe_rows(reference)
    expected = estimator.predict_proba(probes)[:, 1]
    if not np.all(np.abs(compiled.probabilities(probes) - expected) <= TOLERANCE):
        return None
    return compiled


def _flatten(booster: Any, fill: np.ndarray) -> CompiledEnsemble:
    features, thresholds, lefts, rights, values, roots = [], [], [], [], [], []
    start, depth = 0, 0
    for tree in booster.estimators_[:, 0]:
        nodes = tree.tree_
        count = nodes.node_count
        leaf = nodes.children_left == -1
        here = np.arange(count)
        roots.append(start)
        features.append(np.where(leaf, 0, nodes.feature))
        thresholds.append(np.where(leaf, np.inf, nodes.threshold))
        lefts.append(np.where(leaf, here, nodes.children_left) + start)
        rights.append(np.where(leaf, here, nodes.children_right) + start)
        values.append(np.where(leaf, nodes.value[:, 0, 0] * booster.learning_rate, 0.0))
        start += count
        depth = max(depth, int(nodes.max_depth))
    return CompiledEnsemble(
        feature=np.concatenate(features).astype(np.intp),
        threshold=np.concatenate(thresholds).astype(np.float64),
        left=np.concatenate(lefts).astype(np.intp),
        right=np.concatenate(rights).astype(np.intp),
        value=np.concatenate(values).astype(np.float64),
        roots=np.asarray(roots, dtype=np.intp),
        depth=depth,
        fill=fill,
        offset=0.0,
    )


def _probe_rows(reference: np.ndarray) -> np.ndarray:
    scaled = [reference * scale for scale in _PROBE_SCALES]
    missing = np.full_like(reference, np.nan)
    return np.vstack([*scaled, missing])
