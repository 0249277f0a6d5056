"""Background jobs (django-q2) of delivery: one attempt per job; reminders on schedule."""

from __future__ import annotations

from audit import SYSTEM
from billing.delivery import services
from billing.models import Invoice


def attempt_delivery_job(delivery_id: int) -> str:
    """One attempt; a failure schedules the next one itself (exponential backoff)."""
    return str(services.attempt_delivery(delivery_id, by=SYSTEM).status)


def send_due_deliveries_job() -> int:
    """Safety net: attempt queued deliveries whose time has come (e.g. after a restart)."""
    return services.send_due_deliveries(by=SYSTEM)


def send_overdue_reminders_job() -> int:
    return services.send_overdue_reminders(by=SYSTEM)


def queue_receipt_job(invoice_id: int) -> int | None:
    """Queue the paid invoice's receipt notification (once; see services.queue_receipt)."""
    invoice = Invoice.objects.get(pk=invoice_id)
    delivery = services.queue_receipt(invoice, by=SYSTEM)
    return delivery.pk if delivery else None
