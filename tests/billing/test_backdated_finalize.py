"""finalize_invoice(issue_date=...): back-dating keeps numbers and dates in order."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest
from django.utils import timezone

from billing import services
from billing.exceptions import InvalidInput
from billing.models import Customer, Invoice, InvoiceSeries
from security.models import User
from tests.factories import audit_events

pytestmark = pytest.mark.django_db

MakeDraft = Callable[..., Invoice]


def _days_ago(days: int) -> datetime.date:
    return timezone.localdate() - datetime.timedelta(days=days)


def test_a_back_dated_invoice_takes_its_due_date_from_the_issue_date(
    make_draft_invoice: MakeDraft, alice_company: Customer, clerk: User
) -> None:
    draft = make_draft_invoice(alice_company, payment_terms_days=30)

    invoice = services.finalize_invoice(draft, by=clerk, issue_date=_days_ago(45))

    assert invoice.issue_date == _days_ago(45)
    assert invoice.due_date == _days_ago(15)
    assert Invoice.objects.overdue().filter(pk=invoice.pk).exists()
    [event] = audit_events("invoice.finalized", invoice)
    assert event.details["issue_date"] == _days_ago(45).isoformat()


def test_an_issue_date_in_the_future_is_refused_and_nothing_changes(
    make_draft_invoice: MakeDraft, alice_company: Customer, clerk: User
) -> None:
    draft = make_draft_invoice(alice_company)
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)

    with pytest.raises(InvalidInput, match="future") as refused:
        services.finalize_invoice(draft, by=clerk, issue_date=tomorrow)

    assert refused.value.field == "issue_date"
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.DRAFT
    assert InvoiceSeries.objects.get(code="F").next_number == 1
    assert not audit_events("invoice.finalized")


def test_an_issue_date_before_an_earlier_number_is_refused_and_takes_no_number(
    make_draft_invoice: MakeDraft, alice_company: Customer, clerk: User
) -> None:
    first = services.finalize_invoice(
        make_draft_invoice(alice_company), by=clerk, issue_date=_days_ago(10)
    )
    late = make_draft_invoice(alice_company)

    with pytest.raises(InvalidInput, match="earlier number") as refused:
        services.finalize_invoice(late, by=clerk, issue_date=_days_ago(11))

    assert refused.value.field == "issue_date"
    assert first.number is not None
    assert InvoiceSeries.objects.get(code="F").next_number == first.number + 1
    late.refresh_from_db()
    assert late.status == Invoice.Status.DRAFT
