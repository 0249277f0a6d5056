"""Drafts: created with checked lines, edited only while DRAFT."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from decimal import Decimal

import pytest
import time_machine

from billing import services
from billing.exceptions import InvalidInput, InvalidQuantity, InvalidVatRate, UnknownCurrency
from billing.models import Customer, Invoice, InvoiceLine
from security.models import User
from tests.factories import audit_events, line, table_snapshot

pytestmark = pytest.mark.django_db

MakeInvoice = Callable[..., Invoice]


def test_create_draft_computes_line_nets_half_up_and_audits(
    make_draft_invoice: MakeInvoice, alice_company: Customer
) -> None:
    draft = make_draft_invoice(alice_company, [line("Bolts", "3", "0.125")])
    assert draft.status == Invoice.Status.DRAFT and draft.number is None
    assert [ln.net_amount for ln in draft.lines.all()] == [38]
    [event] = audit_events("invoice.draft_created", draft)
    assert event.details["lines"] == 1


def test_a_draft_takes_the_customers_currency_and_terms(
    make_draft_invoice: MakeInvoice, bob_company: Customer, company: object
) -> None:
    draft = make_draft_invoice(bob_company)
    assert draft.currency == "EUR"
    assert draft.payment_terms_days == 30


@pytest.mark.parametrize(
    ("spec", "error", "field"),
    [
        (line(quantity="0"), InvalidQuantity, "quantity"),
        (line(quantity="-2"), InvalidQuantity, "quantity"),
        (line(vat_rate="20"), InvalidVatRate, "vat_rate"),
        (line(vat_category="Z", vat_rate="25"), InvalidVatRate, "vat_rate"),
        (line(unit_price="-1"), InvalidInput, "unit_price"),
        (line(unit_price="0.00001"), InvalidInput, "unit_price"),
        ({**line(), "description": ""}, InvalidInput, "description"),
        ({**line(), "colour": "red"}, InvalidInput, "colour"),
        ({**line(), "description": "Bolts\x0bM8"}, InvalidInput, "description"),
        ({**line(), "description": "x" * 501}, InvalidInput, "description"),
        (line(unit="h\x00"), InvalidInput, "unit"),
        (line(unit="u" * 21), InvalidInput, "unit"),
        (line(quantity="9999999999", unit_price="999999999999"), InvalidInput, "unit_price"),
    ],
)
def test_a_bad_line_is_refused_naming_its_field_and_nothing_changes(
    make_draft_invoice: MakeInvoice,
    alice_company: Customer,
    spec: dict[str, object],
    error: type[Exception],
    field: str,
) -> None:
    before = table_snapshot()
    with pytest.raises(error) as excinfo:
        make_draft_invoice(alice_company, [line(), spec])
    assert getattr(excinfo.value, "field", None) == field
    assert table_snapshot() == before
    assert not audit_events("invoice.draft_created")


def test_a_draft_in_an_unknown_currency_is_refused(
    make_draft_invoice: MakeInvoice, alice_company: Customer
) -> None:
    with pytest.raises(UnknownCurrency) as excinfo:
        make_draft_invoice(alice_company, currency="ABC")
    assert excinfo.value.field == "currency"
    assert not Invoice.objects.exists()


def test_an_invoice_whose_total_outgrows_what_it_can_hold_is_refused_at_finalize(
    make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    # Each line is within bounds (9 trillion SEK); together, with VAT, they are not.
    draft = make_draft_invoice(
        alice_company, [line("A", "900", "10000000000"), line("B", "900", "10000000000")]
    )

    with pytest.raises(InvalidInput) as excinfo:
        services.finalize_invoice(draft, by=clerk)

    assert excinfo.value.field == "lines"
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.DRAFT and draft.number is None
    assert not audit_events("invoice.finalized")


def test_notes_with_a_control_character_are_refused(
    make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        make_draft_invoice(alice_company, notes="Thanks\x1b[31m")
    assert excinfo.value.field == "notes"
    assert "U+001B" in excinfo.value.message
    assert not Invoice.objects.exists()

    draft = make_draft_invoice(alice_company, notes="Line one\n\tLine two")
    with pytest.raises(InvalidInput) as excinfo:
        services.update_draft_invoice(draft, by=clerk, notes="bell\x07")
    assert excinfo.value.field == "notes"
    draft.refresh_from_db()
    assert draft.notes == "Line one\n\tLine two"


@time_machine.travel(datetime.datetime(2026, 3, 10, 12, tzinfo=datetime.UTC))
def test_a_due_date_before_the_issue_date_is_refused(
    make_draft_invoice: MakeInvoice, alice_company: Customer
) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        make_draft_invoice(alice_company, due_date=datetime.date(2026, 3, 9))
    assert excinfo.value.field == "due_date"
    assert not Invoice.objects.exists()


def test_lines_are_added_updated_and_removed_on_a_draft(
    make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    draft = make_draft_invoice(alice_company, [])
    added = services.add_invoice_line(draft, by=clerk, **line("Hours", "2", "500"))
    assert added.net_amount == 100000 and added.position == 1
    updated = services.update_invoice_line(added, by=clerk, quantity=Decimal("3"))
    assert updated.net_amount == 150000
    services.remove_invoice_line(updated, by=clerk)
    assert not draft.lines.exists()
    assert audit_events("invoice.line_added", draft)[0].details["net_amount"] == 100000
    assert audit_events("invoice.line_updated", draft)[0].details["fields"] == ["quantity"]
    assert audit_events("invoice.line_removed", draft)[0].details["line_id"] == added.pk


def test_update_line_rechecks_the_whole_line(
    make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    draft = make_draft_invoice(alice_company, [line()])
    first = draft.lines.get()
    with pytest.raises(InvalidVatRate):
        services.update_invoice_line(first, by=clerk, vat_category="E")
    first.refresh_from_db()
    assert (first.vat_category, first.vat_rate) == ("S", Decimal("25"))


def test_changing_a_drafts_currency_recomputes_its_line_nets(
    make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    draft = make_draft_invoice(alice_company, [line(quantity="1", unit_price="10.5")])
    services.update_draft_invoice(draft, by=clerk, currency="JPY", notes="yen")
    assert InvoiceLine.objects.get(invoice=draft).net_amount == 11  # 10.5 -> 11 yen
    assert audit_events("invoice.draft_updated", draft)[0].details["fields"] == [
        "currency",
        "notes",
    ]


def test_delete_draft_invoice_removes_it_and_its_lines(
    make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    draft = make_draft_invoice(alice_company)
    services.delete_draft_invoice(draft, by=clerk)
    assert not Invoice.objects.exists() and not InvoiceLine.objects.exists()
    assert audit_events("invoice.draft_deleted")[0].object_id == str(draft.pk)


def _as_read(lines: list[InvoiceLine]) -> list[tuple[object, ...]]:
    fields = ("pk", "position", "description", "quantity", "unit_price", "vat_rate", "net_amount")
    return [tuple(str(getattr(ln, name)) for name in fields) for ln in lines]


def test_create_draft_with_lines_returns_the_lines_as_they_read_back(
    company: object, alice_company: Customer, clerk: User
) -> None:
    draft, lines = services.create_draft_invoice_with_lines(
        customer=alice_company,
        by=clerk,
        lines=[line("Consulting", "2", "1000"), line("Travel", "1", "250.5", vat_rate="6")],
    )

    assert _as_read(lines) == _as_read(list(draft.lines.all()))
    assert str(lines[0].quantity) == "2.0000"  # the column's places, as read back
    assert str(lines[1].vat_rate) == "6.00"


def test_finalize_with_lines_returns_the_frozen_lines(
    make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    draft = make_draft_invoice(alice_company)

    finalized, lines = services.finalize_invoice_with_lines(draft, by=clerk)

    assert finalized.status == Invoice.Status.OPEN
    assert _as_read(lines) == _as_read(list(InvoiceLine.objects.filter(invoice=finalized)))
