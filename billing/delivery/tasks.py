"""Background jobs (django-q2) of delivery: a finalized invoice's signing then delivery; one
attempt per job; reminders on schedule."""

from __future__ import annotations

import logging

from audit import SYSTEM
from billing.delivery import services
from billing.models import Invoice

logger = logging.getLogger(__name__)


def attempt_delivery_job(delivery_id: int) -> str:
    """One attempt; a failure schedules the next one itself (exponential backoff)."""
    return str(services.attempt_delivery(delivery_id, by=SYSTEM).status)


def send_due_deliveries_job() -> int:
    """Safety net: attempt queued deliveries whose time has come (e.g. after a restart)."""
    return services.send_due_deliveries(by=SYSTEM)


def send_overdue_reminders_job() -> int:
    return services.send_overdue_reminders(by=SYSTEM)


def queue_receipts_job(invoice_ids: list[int]) -> int:
    """Queue each paid invoice's receipt notification (once; see services.queue_receipt);
    the number queued. One invoice's failure does not stop the others; the job then fails,
    and running it again queues only what is still missing."""
    queued = 0
    failed: Exception | None = None
    for invoice_id in invoice_ids:
        try:
            queued += queue_receipt_job(invoice_id) is not None
        except Exception as exc:
            logger.exception("receipt of invoice %s not queued", invoice_id)
            failed = failed or exc
    if failed is not None:
        raise failed
    return queued


def queue_receipt_job(invoice_id: int) -> int | None:
    """Queue the paid invoice's receipt notification (once; see services.queue_receipt).
    Jobs enqueued one per invoice by earlier versions still run through here."""
    # The service reads the invoice itself, under its lock: no fetch here first.
    delivery = services.queue_receipt(invoice_id, by=SYSTEM)
    return delivery.pk if delivery else None


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
