"""A finalized invoice can never change: not by a service, a bulk update or raw SQL."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from billing import services
from billing.exceptions import InvoiceNotDraft
from billing.models import Customer, Invoice, InvoiceLine
from security.models import User
from tests.factories import audit_events, line, table_snapshot

pytestmark = pytest.mark.django_db

MakeInvoice = Callable[..., Invoice]


@pytest.fixture
def invoice(make_open_invoice: MakeInvoice, alice_company: Customer) -> Invoice:
    return make_open_invoice(alice_company)


@pytest.mark.parametrize(
    "edit",
    [
        lambda inv, by: services.add_invoice_line(inv, by=by, **line()),
        lambda inv, by: services.update_invoice_line(inv.lines.first(), by=by, quantity="9"),
        lambda inv, by: services.remove_invoice_line(inv.lines.first(), by=by),
        lambda inv, by: services.update_draft_invoice(inv, by=by, notes="changed"),
        lambda inv, by: services.delete_draft_invoice(inv, by=by),
    ],
    ids=["add line", "update line", "remove line", "update invoice", "delete"],
)
def test_services_refuse_to_edit_a_finalized_invoice(
    invoice: Invoice, clerk: User, edit: Callable[[Invoice, User], object]
) -> None:
    before = table_snapshot()
    events = len(audit_events("invoice.line_added")) + len(audit_events("invoice.draft_updated"))
    with pytest.raises(InvoiceNotDraft) as excinfo:
        edit(invoice, clerk)
    assert excinfo.value.field == "status"
    assert "credit note" in str(excinfo.value)
    assert table_snapshot() == before
    assert events == len(audit_events("invoice.line_added")) + len(
        audit_events("invoice.draft_updated")
    )


@pytest.mark.postgres_only
@pytest.mark.parametrize(
    "changes",
    [
        {"gross_total": 1, "net_total": 1, "vat_total": 0},
        {"notes": "edited"},
        {"number": 99},
        {"buyer_snapshot": {"name": "Mallory"}},
        {"ocr_reference": "1234574"},
        {"status": "draft", "number": None},
    ],
    ids=["totals", "notes", "number", "snapshot", "ocr", "back to draft"],
)
def test_a_bulk_queryset_update_of_frozen_content_is_refused_by_the_database(
    invoice: Invoice, changes: dict[str, object]
) -> None:
    before = table_snapshot()
    with pytest.raises(DatabaseError, match="finalized"), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(**changes)
    assert table_snapshot() == before


@pytest.mark.postgres_only
def test_settlement_columns_still_move_on_a_finalized_invoice(invoice: Invoice) -> None:
    # Payments and credit notes change these (through services); the trigger allows it.
    Invoice.objects.filter(pk=invoice.pk).update(amount_paid=100, status="open")
    invoice.refresh_from_db()
    assert invoice.amount_paid == 100


@pytest.mark.postgres_only
def test_raw_sql_cannot_change_or_delete_a_finalized_invoice(invoice: Invoice) -> None:
    before = table_snapshot()
    statements = [
        "UPDATE billing_invoice SET net_total = 0, gross_total = vat_total WHERE id = %s",
        "DELETE FROM billing_invoice WHERE id = %s",
    ]
    for statement in statements:
        with (
            pytest.raises(DatabaseError, match="finalized"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [invoice.pk])
    assert table_snapshot() == before


@pytest.mark.postgres_only
def test_lines_of_a_finalized_invoice_cannot_be_inserted_updated_or_deleted(
    invoice: Invoice,
) -> None:
    before = table_snapshot()
    first = invoice.lines.first()
    assert first is not None
    attempts = [
        lambda: InvoiceLine.objects.create(
            invoice=invoice,
            description="smuggled",
            quantity=Decimal(1),
            unit_price=Decimal(1),
            vat_category="S",
            vat_rate=Decimal(25),
        ),
        lambda: InvoiceLine.objects.filter(pk=first.pk).update(unit_price=Decimal("0.01")),
        lambda: InvoiceLine.objects.filter(pk=first.pk).delete(),
    ]
    for attempt in attempts:
        with pytest.raises(DatabaseError, match="finalized"), transaction.atomic():
            attempt()
    assert table_snapshot() == before


@pytest.mark.postgres_only
def test_a_line_cannot_be_moved_from_a_draft_onto_a_finalized_invoice(
    invoice: Invoice, make_draft_invoice: MakeInvoice, alice_company: Customer
) -> None:
    draft_line = make_draft_invoice(alice_company).lines.first()
    assert draft_line is not None
    with pytest.raises(DatabaseError, match="finalized"), transaction.atomic():
        InvoiceLine.objects.filter(pk=draft_line.pk).update(invoice=invoice)
