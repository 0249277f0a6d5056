"""The review as a document: one template for the admin page and the PDF, the charts as
SVG images, the PDF rendered by WeasyPrint (PDF/A-3b) and signed like invoices (PAdES, the
company's certificate: ``billing.documents``)."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from audit.reviews.charts import data_uri, review_charts
from audit.reviews.models import SecurityReview


def review_context(review: SecurityReview, sections: dict[str, Any]) -> dict[str, Any]:
    """What ``audit/review_body.html`` shows: the sections, the charts, the sign-off."""
    return {
        "review": review,
        "s": sections,
        "charts": {name: data_uri(svg) for name, svg in review_charts(sections).items()},
        "rendered_at": timezone.now(),
    }


def render_review_html(review: SecurityReview, sections: dict[str, Any]) -> str:
    """The review as a standalone HTML document (the PDF's source)."""
    return render_to_string("audit/review_pdf.html", review_context(review, sections))


def render_review_pdf(review: SecurityReview, sections: dict[str, Any]) -> bytes:
    """The review as a signed PDF."""
    from billing.documents.render import html_to_pdf
    from billing.documents.sign import sign_pdf

    pdf = html_to_pdf(render_review_html(review, sections))
    return sign_pdf(pdf, reason=f"Tillit security review {review.label}")
