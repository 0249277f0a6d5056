"""Background jobs (django-q2): render + sign a finalized invoice, then queue its delivery."""

from __future__ import annotations

import logging

from audit import SYSTEM
from billing.documents import services
from billing.models import Invoice

logger = logging.getLogger(__name__)


def issue_invoice_document(invoice_id: int) -> str:
    """Sign the invoice's PDF (once) and queue its delivery to the customer.

    An XML that breaks an EN 16931 rule raises (the failure is recorded on the invoice):
    the job fails, nothing is signed or sent, and the cluster runs it again; once the
    cause is fixed, the next attempt signs and delivers.
    """
    invoice = Invoice.objects.select_related("credited_invoice", "customer").get(pk=invoice_id)
    document = services.issue_invoice_document(invoice, by=SYSTEM)
    logger.info("invoice %s signed as version %s", invoice_id, document.version)
    return document.sha256


def sign_period_documents_job(start: str, end: str) -> int:
    """Sign every invoice of the period that has no PDF yet (before a period export)."""
    signed = services.sign_period_documents(start=start, end=end, by=SYSTEM)
    logger.info("signed %s documents of %s..%s", signed, start, end)
    return signed
