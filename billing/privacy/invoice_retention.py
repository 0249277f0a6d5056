"""Invoices past the bookkeeping period are deleted, with everything that hangs on them.

Bokföringslagen (7 kap. 2 §) keeps accounting records for seven years after the end of
the calendar year they belong to; an invoice finalized in year Y may go from 1 January of
Y + 8 on (with ``PRIVACY_INVOICE_RETENTION_YEARS`` = 7). The database trigger of the
frozen invoices refuses the delete of anything finalized less than seven years ago,
whatever the caller (billing migration 0006).
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit import SYSTEM, record
from billing.models import Invoice, InvoiceLine
from billing.privacy import registry
from security.actors import Actor

BATCH = 500


def retention_cutoff(now: datetime.datetime) -> datetime.datetime:
    """Invoices finalized before this moment are past their retention."""
    year = timezone.localtime(now).year - int(settings.PRIVACY_INVOICE_RETENTION_YEARS)
    return timezone.make_aware(datetime.datetime(year, 1, 1))


def expired_invoice_ids(now: datetime.datetime) -> list[int]:
    """Finalized invoices and credit notes past the cutoff, leaving out an invoice whose
    credit note is not (the note still points at it)."""
    cutoff = retention_cutoff(now)
    expired = Invoice.objects.exclude(status=Invoice.Status.DRAFT).filter(finalized_at__lt=cutoff)
    younger_notes = Invoice.objects.filter(credited_invoice__isnull=False).filter(
        Q(finalized_at__gte=cutoff) | Q(finalized_at__isnull=True)
    )
    return list(
        expired.exclude(pk__in=younger_notes.values("credited_invoice_id"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _delete_batch(ids: list[int], *, by: Actor) -> dict[str, int]:
    from billing.delivery.models import Delivery
    from billing.documents.models import DocumentCheckFailure, InvoiceDocument

    done: dict[str, int] = {}
    for name, step in registry.invoice_deletion_steps().items():
        for what, count in step(ids, by=by).items():
            done[f"{name}.{what}"] = count
    done["deliveries"] = Delivery.objects.filter(invoice_id__in=ids).delete()[0]
    done["documents"] = InvoiceDocument.objects.filter(invoice_id__in=ids).delete()[0]
    DocumentCheckFailure.objects.filter(invoice_id__in=ids).delete()
    # Credit notes (and their lines, which point at the invoice's lines) go first.
    notes = list(
        Invoice.objects.filter(pk__in=ids, credited_invoice__isnull=False).values_list(
            "pk", flat=True
        )
    )
    for group in (notes, [pk for pk in ids if pk not in set(notes)]):
        InvoiceLine.objects.filter(invoice_id__in=group).delete()
        done["invoices"] = (
            done.get("invoices", 0) + Invoice.objects.filter(pk__in=group).delete()[0]
        )
    return done


def delete_expired_invoices(*, by: Actor = SYSTEM, now: Any = None) -> dict[str, int]:
    """Delete the invoices past their retention with their lines, documents, deliveries
    and (payments' step) payments, refunds and bank lines, in batches; each batch one
    transaction and one audit event naming the numbers deleted."""
    now = now or timezone.now()
    ids = expired_invoice_ids(now)
    totals: dict[str, int] = {}
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        with transaction.atomic():
            numbers = list(
                Invoice.objects.select_for_update()
                .filter(pk__in=batch)
                .order_by("pk")
                .values_list("display_number", flat=True)
            )
            done = _delete_batch(batch, by=by)
            record(
                "privacy.invoices_deleted",
                actor=by,
                numbers=numbers,
                cutoff=retention_cutoff(now).date().isoformat(),
                deleted=done,
            )
        for what, count in done.items():
            totals[what] = totals.get(what, 0) + count
    return totals
