"""Background jobs (django-q2) of documents: sign a period's PDFs (a finalized invoice's own
signing and delivery job is ``billing.delivery.tasks.issue_invoice_document``)."""

from __future__ import annotations

import logging

from audit import SYSTEM
from billing.documents import services

logger = logging.getLogger(__name__)


def sign_period_documents_job(start: str, end: str) -> int:
    """Sign every invoice of the period that has no PDF yet (before a period export)."""
    signed = services.sign_period_documents(start=start, end=end, by=SYSTEM)
    logger.info("signed %s documents of %s..%s", signed, start, end)
    return signed
