"""Invoices past the bookkeeping period are deleted by the daily retention with what
hangs on them; younger ones stay, and the database refuses to delete them anyway."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.db import IntegrityError, InternalError, ProgrammingError, transaction
from django.utils import timezone

from billing.models import Customer, Invoice, InvoiceLine
from billing.privacy.invoice_retention import delete_expired_invoices, retention_cutoff
from tests.factories import audit_events, line

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db]


def test_cutoff_is_the_start_of_the_year_seven_years_back() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert timezone.localtime(retention_cutoff(now)).date().isoformat() == "2019-01-01"


def test_old_invoices_go_with_their_lines_and_deliveries_young_ones_stay(
    company: Any, make_open_invoice: Any, astrid_customer: Customer
) -> None:
    with time_machine.travel(datetime(2018, 6, 1, 10, 0, tzinfo=UTC)):
        old = make_open_invoice(astrid_customer, [line("Pulka 2018", "1", "100")])
    with time_machine.travel(datetime(2019, 3, 1, 10, 0, tzinfo=UTC)):
        kept = make_open_invoice(astrid_customer, [line("Pulka 2019", "1", "100")])
    from payments.models import Payment

    paid = Payment.objects.create(  # a bank transfer, as the camt.054 import records one
        invoice=old,
        amount=5000,
        currency="SEK",
        method="bank_transfer",
        status="succeeded",
        idempotency_key="bank-2018-1",
    )

    with time_machine.travel(datetime(2026, 12, 7, 10, 0, tzinfo=UTC)):
        done = delete_expired_invoices()

    assert done["invoices"] == 1
    assert done["payments.payments"] == 1
    assert not Payment.objects.filter(pk=paid.pk).exists()
    assert not Invoice.objects.filter(pk=old.pk).exists()
    assert not InvoiceLine.objects.filter(invoice_id=old.pk).exists()
    assert Invoice.objects.filter(pk=kept.pk).exists()
    [event] = audit_events("privacy.invoices_deleted")
    assert event.details["numbers"] == [old.display_number]
    assert event.details["cutoff"] == "2019-01-01"


def test_the_database_refuses_to_delete_a_young_finalized_invoice(
    company: Any, make_open_invoice: Any, astrid_customer: Customer
) -> None:
    invoice = make_open_invoice(astrid_customer, [line("Pulka", "1", "100")])
    with pytest.raises((IntegrityError, InternalError, ProgrammingError)), transaction.atomic():
        InvoiceLine.objects.filter(invoice=invoice).delete()
    with pytest.raises((IntegrityError, InternalError, ProgrammingError)), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).delete()
    assert Invoice.objects.filter(pk=invoice.pk).exists()
