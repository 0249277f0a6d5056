"""Billing models: database constraints guard signs, numbering and the singleton."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from billing.models import CompanyProfile, Customer, Invoice, InvoiceLine, InvoiceSeries

pytestmark = pytest.mark.django_db


def _draft(customer: Customer) -> Invoice:
    return Invoice.objects.create(
        customer=customer, series=InvoiceSeries.objects.get(code="F"), currency="SEK"
    )


def test_migrations_create_the_default_series() -> None:
    defaults = dict(InvoiceSeries.objects.filter(is_default=True).values_list("kind", "code"))
    assert defaults == {"invoice": "F", "credit_note": "K"}


def test_there_is_only_one_company_profile(company: CompanyProfile) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        CompanyProfile.objects.create(
            singleton=2,
            legal_name="Other AB",
            organisation_number="1",
            postal_code="1",
            city="x",
            address_line1="x",
            email="x@example.test",
        )


def test_a_line_with_zero_quantity_is_refused_by_the_database(alice_company: Customer) -> None:
    invoice = _draft(alice_company)
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.create(
            invoice=invoice,
            description="x",
            quantity=Decimal("0"),
            unit_price=Decimal("1"),
            vat_category="S",
            vat_rate=Decimal("25"),
        )


def test_a_standard_rated_line_needs_a_positive_rate(alice_company: Customer) -> None:
    invoice = _draft(alice_company)
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.create(
            invoice=invoice,
            description="x",
            quantity=Decimal("1"),
            unit_price=Decimal("1"),
            vat_category="S",
            vat_rate=Decimal("0"),
        )


def test_payments_can_never_exceed_what_is_left(alice_company: Customer) -> None:
    invoice = _draft(alice_company)
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(amount_paid=1)


def test_customer_clean_formats_a_swedish_organisation_number() -> None:
    customer = Customer(
        name="A", email="a@example.test", country="SE", identity_number="5566778899"
    )
    customer.full_clean()
    assert customer.identity_number == "556677-8899"


def test_customer_clean_names_a_bad_personal_number() -> None:
    customer = Customer(
        name="P",
        kind="person",
        email="p@example.test",
        country="SE",
        identity_number="19800101-0002",
    )
    with pytest.raises(ValidationError) as excinfo:
        customer.full_clean()
    assert "identity_number" in excinfo.value.message_dict


def test_invoice_queryset_overdue_lists_open_invoices_past_their_due_date(
    alice_company: Customer,
) -> None:
    import datetime

    late, on_time = _draft(alice_company), _draft(alice_company)
    for number, (invoice, due) in enumerate(
        ((late, datetime.date(2026, 1, 10)), (on_time, datetime.date(2026, 2, 10))), start=1
    ):
        Invoice.objects.filter(pk=invoice.pk).update(
            status="open", number=number, issue_date=datetime.date(2026, 1, 1), due_date=due
        )
    assert list(Invoice.objects.overdue(today=datetime.date(2026, 2, 1))) == [late]
