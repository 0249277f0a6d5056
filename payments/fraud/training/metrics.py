"""The evaluation of a fraud score on a holdout: the figures docs/fraud.md explains.

Average precision (the primary figure: fraud is rare, so ROC AUC alone flatters), ROC AUC,
precision at 50 % and 80 % recall, card precision in the top k per day (k = the analysts'
daily capacity), recall per scenario and the threshold table (for each score, what would
be blocked: fraud caught, good payments wrongly blocked).
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score


def precision_at_recall(labels: np.ndarray, probabilities: np.ndarray, recall: float) -> float:
    """The best precision among the thresholds that catch at least ``recall`` of the fraud."""
    if labels.sum() == 0:
        return 0.0
    precision, recalls, _thresholds = precision_recall_curve(labels, probabilities)
    reaching = precision[recalls >= recall]
    return float(reaching.max()) if reaching.size else 0.0


def card_precision_top_k(
    labels: np.ndarray,
    probabilities: np.ndarray,
    cards: Sequence[str],
    times: Sequence[datetime.datetime],
    k: int,
) -> float:
    """Per day: the k cards with the highest score that day (a card's highest), and the share
    of them with fraud that day; the mean over the days (the analysts' daily capacity)."""
    days: dict[datetime.date, dict[str, tuple[float, bool]]] = defaultdict(dict)
    for label, probability, card, at in zip(labels, probabilities, cards, times, strict=True):
        best, fraud = days[at.date()].get(card, (0.0, False))
        days[at.date()][card] = (max(best, float(probability)), fraud or bool(label))
    shares = []
    for scored in days.values():
        top = sorted(scored.values(), key=lambda item: -item[0])[:k]
        shares.append(sum(fraud for _p, fraud in top) / len(top))
    return float(np.mean(shares)) if shares else 0.0


def threshold_table(labels: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
    """For each score from 5 to 95 in steps of 5: at or above it, the fraud caught (recall),
    the precision, and the good payments flagged (count and share of all good ones)."""
    fraud = max(int(labels.sum()), 1)
    good = max(int((labels == 0).sum()), 1)
    rows = []
    for threshold in range(5, 100, 5):
        flagged = scores >= threshold
        caught = int((flagged & (labels == 1)).sum())
        wrong = int((flagged & (labels == 0)).sum())
        rows.append(
            {
                "score": threshold,
                "flagged": int(flagged.sum()),
                "fraud_caught": caught,
                "recall": round(caught / fraud, 4),
                "precision": round(caught / flagged.sum(), 4) if flagged.any() else None,
                "good_flagged": wrong,
                "good_flagged_rate": round(wrong / good, 5),
            }
        )
    return rows


def evaluate(
    labels: np.ndarray,
    probabilities: np.ndarray,
    *,
    cards: Sequence[str],
    times: Sequence[datetime.datetime],
    scenarios: Sequence[str],
    top_k: int,
    block_score: int,
    review_score: int,
) -> dict[str, Any]:
    """Every holdout figure of a model's probabilities (scores are whole percents, 0-99)."""
    scores = np.minimum(99, (probabilities * 100).astype(int))
    both = 0 < labels.sum() < len(labels)
    good = labels == 0
    per_scenario: dict[str, dict[str, Any]] = {}
    for name in sorted({s for s in scenarios if s}):
        mask = np.array([s == name for s in scenarios])
        per_scenario[name] = {
            "payments": int(mask.sum()),
            "recall_at_block": round(float((scores[mask] >= block_score).mean()), 4),
            "recall_at_review": round(float((scores[mask] >= review_score).mean()), 4),
        }
    return {
        "payments": len(labels),
        "fraud": int(labels.sum()),
        "average_precision": float(average_precision_score(labels, probabilities)) if both else 0.0,
        "roc_auc": float(roc_auc_score(labels, probabilities)) if both else 0.0,
        "precision_at_50_recall": precision_at_recall(labels, probabilities, 0.5),
        "precision_at_80_recall": precision_at_recall(labels, probabilities, 0.8),
        "card_precision_top_k": card_precision_top_k(labels, probabilities, cards, times, top_k),
        "top_k": top_k,
        "block_score": block_score,
        "review_score": review_score,
        "false_block_rate": float((scores[good] >= block_score).mean()) if good.any() else 0.0,
        "false_blocks": int((scores[good] >= block_score).sum()),
        "fraud_blocked": int((scores[~good] >= block_score).sum()),
        "fraud_reviewed_or_blocked": int((scores[~good] >= review_score).sum()),
        "recall_per_scenario": per_scenario,
    }
