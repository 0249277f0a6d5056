"""Background jobs (django-q2): render + sign a finalized invoice, then queue its delivery."""

from __future__ import annotations

import logging

from audit import SYSTEM
from billing.documents import services
from billing.models import Invoice

logger = logging.getLogger(__name__)


def issue_invoice_document(invoice_id: int) -> str:
    """Sign the invoice's PDF (once) and queue its delivery to the customer."""
    invoice = Invoice.objects.select_related("credited_invoice", "customer").get(pk=invoice_id)
    document = services.sign_invoice_document(invoice, by=SYSTEM)
    logger.info("invoice %s signed as version %s", invoice_id, document.version)
    from billing.delivery.models import Delivery
    from billing.delivery.services import queue_delivery

    if not Delivery.objects.filter(invoice=invoice, kind=Delivery.Kind.INVOICE).exists():
        queue_delivery(invoice, by=SYSTEM)
    return document.sha256


def sign_period_documents_job(start: str, end: str) -> int:
    """Sign every invoice of the period that has no PDF yet (before a period export)."""
    signed = services.sign_period_documents(start=start, end=end, by=SYSTEM)
    logger.info("signed %s documents of %s..%s", signed, start, end)
    return signed
