"""Finalizing: gapless numbers per series, frozen snapshots, totals, OCR and due date."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable

import pytest
import time_machine
from django.db import close_old_connections, connection

from billing import services
from billing.exceptions import (
    EmptyInvoice,
    InvalidInput,
    InvalidStatusTransition,
    MissingConfiguration,
)
from billing.models import CompanyProfile, Customer, Invoice, InvoiceSeries
from billing.ocr import validate_ocr_reference
from security.models import User
from tests.factories import (
    audit_events,
    ensure_default_series,
    line,
    make_company,
    make_customer,
    table_snapshot,
)

MakeInvoice = Callable[..., Invoice]


@pytest.mark.django_db
@time_machine.travel(datetime.datetime(2026, 3, 10, 9, tzinfo=datetime.UTC))
def test_finalize_numbers_dates_totals_and_audits_the_invoice(
    make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    draft = make_draft_invoice(
        alice_company,
        [line("Consulting", "2", "1000.00"), line("Books", "1", "250.50", vat_rate="6")],
    )
    invoice = services.finalize_invoice(draft, by=clerk)

    assert invoice.status == Invoice.Status.OPEN
    assert (invoice.number, invoice.display_number) == (1, "F-000001")
    assert invoice.issue_date == datetime.date(2026, 3, 10)
    assert invoice.due_date == datetime.date(2026, 4, 9)  # 30 days' terms
    assert (invoice.net_total, invoice.vat_total, invoice.gross_total) == (225050, 51503, 276553)
    assert invoice.amount_due == 276553
    validate_ocr_reference(invoice.ocr_reference, length_digit=True)
    assert invoice.seller_snapshot["legal_name"] == "Tillit Demo AB"
    assert invoice.buyer_snapshot["name"] == "Alice Konsult AB"
    assert [g["vat_amount"] for g in invoice.vat_breakdown] == [50000, 1503]
    [event] = audit_events("invoice.finalized", invoice)
    assert event.details == {"number": "F-000001", "gross_total": 276553, "currency": "SEK"}


@pytest.mark.django_db
def test_numbers_follow_each_other_within_a_series(
    make_draft_invoice: MakeInvoice, alice_company: Customer, bob_company: Customer, clerk: User
) -> None:
    drafts = [make_draft_invoice(alice_company), make_draft_invoice(bob_company)]
    numbers = [services.finalize_invoice(d, by=clerk).number for d in reversed(drafts)]
    assert numbers == [1, 2]
    assert InvoiceSeries.objects.get(code="F").next_number == 3


@pytest.mark.django_db
def test_the_snapshot_does_not_follow_later_changes_to_the_customer(
    make_open_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    invoice = make_open_invoice(alice_company)
    services.update_customer(alice_company, by=clerk, name="Alice Renamed AB")
    invoice.refresh_from_db()
    assert invoice.buyer_snapshot["name"] == "Alice Konsult AB"


@pytest.mark.django_db
def test_finalize_rejects_an_empty_invoice(
    make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    draft = make_draft_invoice(alice_company, [])
    before = table_snapshot()
    with pytest.raises(EmptyInvoice) as excinfo:
        services.finalize_invoice(draft, by=clerk)
    assert excinfo.value.field == "lines"
    assert table_snapshot() == before
    assert not audit_events("invoice.finalized")


@pytest.mark.django_db
def test_finalize_rejects_an_invoice_finalized_before(
    make_open_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    invoice = make_open_invoice(alice_company)
    before = table_snapshot()
    with pytest.raises(InvalidStatusTransition) as excinfo:
        services.finalize_invoice(invoice, by=clerk)
    assert excinfo.value.field == "status"
    assert table_snapshot() == before
    assert len(audit_events("invoice.finalized")) == 1


@pytest.mark.django_db
def test_finalize_refuses_reverse_charge_without_the_buyers_vat_id(
    make_draft_invoice: MakeInvoice, clerk: User, company: CompanyProfile
) -> None:
    customer = make_customer("Nobody AB")
    draft = make_draft_invoice(customer, [line(vat_category="AE", vat_rate="0")])
    with pytest.raises(InvalidInput) as excinfo:
        services.finalize_invoice(draft, by=clerk)
    assert excinfo.value.field == "vat_id"
    assert Invoice.objects.get(pk=draft.pk).status == Invoice.Status.DRAFT


@pytest.mark.django_db
def test_finalize_needs_the_company_profile(alice_company: Customer, clerk: User) -> None:
    draft = services.create_draft_invoice(customer=alice_company, lines=[line()], by=clerk)
    with pytest.raises(MissingConfiguration) as excinfo:
        services.finalize_invoice(draft, by=clerk)
    assert excinfo.value.field == "company_profile"
    assert InvoiceSeries.objects.get(code="F").next_number == 1


@pytest.mark.django_db
def test_a_due_date_that_passed_while_in_draft_is_refused_at_finalization(
    make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    with time_machine.travel(datetime.datetime(2026, 3, 1, 9, tzinfo=datetime.UTC)):
        draft = make_draft_invoice(alice_company, due_date=datetime.date(2026, 3, 5))
    with (
        time_machine.travel(datetime.datetime(2026, 3, 10, 9, tzinfo=datetime.UTC)),
        pytest.raises(InvalidInput) as excinfo,
    ):
        services.finalize_invoice(draft, by=clerk)
    assert excinfo.value.field == "due_date"
    assert InvoiceSeries.objects.get(code="F").next_number == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_finalizations_get_numbers_one_to_twenty(clerk: User) -> None:
    ensure_default_series()
    make_company()
    customer = make_customer("Race AB")
    drafts = [
        services.create_draft_invoice(customer=customer, lines=[line()], by=clerk)
        for _ in range(20)
    ]
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def finalize(invoice: Invoice) -> None:
        try:
            barrier.wait(timeout=30)
            services.finalize_invoice(invoice, by=clerk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=finalize, args=(d,)) for d in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    numbers = sorted(n or 0 for n in Invoice.objects.values_list("number", flat=True))
    assert numbers == list(range(1, 21))
    assert InvoiceSeries.objects.get(code="F").next_number == 21
    assert len(audit_events("invoice.finalized")) == 20


@pytest.mark.django_db
def test_a_billing_run_finalizes_drafts_with_consecutive_numbers(
    make_draft_invoice: MakeInvoice, alice_company: Customer, bob_company: Customer, clerk: User
) -> None:
    drafts = [make_draft_invoice(c) for c in (alice_company, bob_company, alice_company)]
    finalized = services.finalize_invoices(list(reversed(drafts)), by=clerk)

    assert [inv.pk for inv in finalized] == [d.pk for d in reversed(drafts)]
    by_id = sorted(Invoice.objects.filter(pk__in=[d.pk for d in drafts]), key=lambda i: i.pk)
    assert [inv.number for inv in by_id] == [1, 2, 3]
    assert {inv.status for inv in by_id} == {Invoice.Status.OPEN}
    single = services.finalize_invoice(make_draft_invoice(bob_company), by=clerk)
    assert single.number == 4
    for invoice in by_id:
        [event] = audit_events("invoice.finalized", invoice)
        assert event.details["number"] == invoice.display_number
        assert invoice.gross_total == 276553 and invoice.ocr_reference


@pytest.mark.django_db
def test_a_billing_run_with_one_bad_invoice_finalizes_none(
    make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    good, empty = make_draft_invoice(alice_company), make_draft_invoice(alice_company, [])
    before = table_snapshot()
    with pytest.raises(EmptyInvoice) as excinfo:
        services.finalize_invoices([good, empty], by=clerk)
    assert excinfo.value.field == "lines"
    assert table_snapshot() == before
    assert not audit_events("invoice.finalized")


@pytest.mark.django_db
def test_a_billing_run_refuses_an_invoice_listed_twice(
    make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    draft = make_draft_invoice(alice_company)
    with pytest.raises(InvalidInput) as excinfo:
        services.finalize_invoices([draft, draft], by=clerk)
    assert excinfo.value.field == "invoices"
    assert Invoice.objects.get(pk=draft.pk).status == Invoice.Status.DRAFT
