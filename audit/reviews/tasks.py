"""Background jobs of the quarterly review (django-q2): thin wrappers around services."""

from __future__ import annotations

from typing import Any


def generate_due_review_job(**_: Any) -> int | None:
    """The daily check: the last quarter's review, once, when it has ended."""
    from audit.reviews.services import generate_due_review

    review = generate_due_review()
    return review.pk if review else None
