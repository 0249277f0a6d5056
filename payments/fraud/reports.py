"""Fraud reports: per day, week or month, what the engine did and what it missed.

One selector (``fraud_report``) for the admin's report page and the quarterly review's
fraud section (``audit.reviews.selectors.payments_and_fraud``). One grouped query over
card payments, each with its latest label (``FraudLabel``) and its evaluation's score:

* ``attempts``: card payment attempts (blocked ones included);
* ``blocked``, ``reviewed``: decided block, held for review;
* ``approved_after_review``: held, then approved by an analyst;
* ``fraud_later``: labelled fraud later although not blocked (the engine's misses);
* ``blocked_good``: blocked, labelled good later (a known false block);
* ``false_block_rate``: ``blocked_good`` over the attempts not labelled fraud — an
  estimate and a lower bound: a blocked payment is never charged, so few are ever
  labelled (docs/fraud.md, "Reports");
* model figures among scored and labelled attempts: ``precision`` and ``recall`` of a
  score at or above the review threshold, and the live model version(s) that scored.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.db.models import Count, Max, Min, OuterRef, Q, Subquery
from django.db.models.functions import TruncDay, TruncMonth, TruncWeek

PERIODS = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}
FIGURES = (
    "attempts",
    "blocked",
    "reviewed",
    "approved_after_review",
    "fraud",
    "fraud_later",
    "good",
    "blocked_good",
    "scored_labelled",
    "scored_fraud",
    "flagged_fraud",
    "flagged_good",
)


def _rates(row: dict[str, Any]) -> dict[str, Any]:
    def share(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    return {
        **row,
        "attempts_allowed": row["attempts"] - row["blocked"] - row["reviewed"],
        "false_block_rate": share(row["blocked_good"], row["attempts"] - row["fraud"]),
        "precision": share(row["flagged_fraud"], row["flagged_fraud"] + row["flagged_good"]),
        "recall": share(row["flagged_fraud"], row["scored_fraud"]),
    }


def fraud_report(
    start: datetime.datetime,
    end: datetime.datetime,
    *,
    period: str = "day",
    review_score: int | None = None,
) -> dict[str, Any]:
    """Figures per period (``day``, ``week`` or ``month``) for card payments created in
    [start, end), and their totals (module docstring). ``review_score``: the threshold the
    model figures are taken at (the current one by default)."""
    from payments.fraud.models import FraudLabel
    from payments.fraud.selectors import get_risk_settings
    from payments.models import Payment

    if period not in PERIODS:
        raise ValueError("period: day, week or month")
    threshold = get_risk_settings().review_score if review_score is None else review_score
    latest = (
        FraudLabel.objects.filter(payment=OuterRef("pk")).order_by("-at", "-pk").values("label")[:1]
    )
    fraud, good = Q(label="fraud"), Q(label="good")
    scored = Q(risk_evaluation__score__isnull=False)
    flagged = Q(risk_evaluation__score__gte=threshold)
    rows = (
        Payment.objects.filter(
            method=Payment.Method.CARD, created_at__gte=start, created_at__lt=end
        )
        .annotate(label=Subquery(latest), period=PERIODS[period]("created_at"))
        .order_by()
        .values("period")
        .annotate(
            attempts=Count("pk"),
            blocked=Count("pk", filter=Q(risk_decision="block")),
            reviewed=Count("pk", filter=Q(risk_decision="review")),
            approved_after_review=Count(
                "pk",
                filter=Q(risk_decision="review", risk_reviewed_at__isnull=False)
                & ~Q(failure_code="risk_declined"),
            ),
            fraud=Count("pk", filter=fraud),
            fraud_later=Count("pk", filter=fraud & ~Q(risk_decision="block")),
            good=Count("pk", filter=good),
            blocked_good=Count("pk", filter=good & Q(risk_decision="block")),
            scored_labelled=Count("pk", filter=scored & (fraud | good)),
            scored_fraud=Count("pk", filter=scored & fraud),
            flagged_fraud=Count("pk", filter=flagged & fraud),
            flagged_good=Count("pk", filter=flagged & good),
            first_model=Min("risk_evaluation__model_version"),
            last_model=Max("risk_evaluation__model_version"),
        )
        .order_by("period")
    )
    periods = []
    totals = dict.fromkeys(FIGURES, 0)
    for found in rows:
        row: dict[str, Any] = dict(found)
        figures = {name: row[name] for name in FIGURES}
        for name in FIGURES:
            totals[name] += figures[name]
        models = sorted({v for v in (row["first_model"], row["last_model"]) if v is not None})
        periods.append({"period": _day(row["period"]), **_rates(figures), "model_versions": models})
    return {
        "period": period,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "review_score": threshold,
        "periods": periods,
        "totals": _rates(totals),
    }


def _day(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return value.date().isoformat()
    return str(value)


def model_history() -> list[dict[str, Any]]:
    """Every trained model version, newest first: when, how it was trained, its holdout
    metrics (average precision, ROC AUC, ...) and whether it is live: the model's quality
    over time."""
    from payments.fraud.models import FraudModelVersion

    return [
        {
            "version": row["pk"],
            "created_at": row["created_at"],
            "algorithm": row["algorithm"],
            "live": row["live"],
            "metrics": row["metrics"] or {},
        }
        for row in FraudModelVersion.objects.order_by("-created_at", "-pk").values(
            "pk", "created_at", "algorithm", "live", "metrics"
        )[:50]
    ]
