"""The estimated effect of new score thresholds on the last 30 days, shown before saving."""

from __future__ import annotations

from django.utils.translation import gettext as _

from payments.fraud.backtest import backtest

EFFECT_DAYS = 30


def confirmation_of(review_score: object, block_score: object) -> str:
    """The value that says the effect of exactly these thresholds was shown."""
    return f"{review_score}:{block_score}"


def effect_message(review_score: int, block_score: int) -> str:
    """Good and fraudulent payments of the last 30 days that would be blocked and reviewed
    with these thresholds, against what was decided (a backtest of the stored evaluations)."""
    result = backtest(days=EFFECT_DAYS, review_score=review_score, block_score=block_score)
    before, after = result.before.by_outcome, result.after.by_outcome
    return _(
        "Estimated effect on the last %(days)s days (%(n)s payments): blocked %(block)s"
        " (%(block_fraud)s fraud, %(block_good)s good; now %(was_block)s), held for review"
        " %(review)s (%(review_fraud)s fraud, %(review_good)s good; now %(was_review)s)."
        " Nothing is saved yet: save again to apply these thresholds."
    ) % {
        "days": EFFECT_DAYS,
        "n": result.evaluations,
        "block": sum(after["block"].values()),
        "block_fraud": after["block"]["fraud"],
        "block_good": after["block"]["good"],
        "was_block": sum(before["block"].values()),
        "review": sum(after["review"].values()),
        "review_fraud": after["review"]["fraud"],
        "review_good": after["review"]["good"],
        "was_review": sum(before["review"].values()),
    }
