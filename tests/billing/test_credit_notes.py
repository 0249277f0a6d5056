"""Credit notes: full or partial, numbered in their own series, never beyond what is left."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import services
from billing.exceptions import CreditExceedsRemaining, InvalidStatusTransition
from billing.models import Customer, Invoice
from billing.money import Money
from billing.services import CreditLine
from security.models import User
from tests.factories import (
    audit_events,
    line,
    make_company,
    make_customer,
    make_user,
    table_snapshot,
)

pytestmark = pytest.mark.django_db

MakeInvoice = Callable[..., Invoice]
Status = Invoice.Status


@pytest.fixture
def invoice(make_open_invoice: MakeInvoice, alice_company: Customer) -> Invoice:
    """2 x 1,000.00 at 25% and 1 x 250.50 at 6%: 2,765.53 SEK."""
    return make_open_invoice(
        alice_company, [line("Consulting", "2", "1000"), line("Books", "1", "250.50", vat_rate="6")]
    )


def test_a_full_credit_note_settles_the_invoice(invoice: Invoice, clerk: User) -> None:
    note = services.issue_credit_note(invoice, by=clerk, reason="cancelled order")
    invoice.refresh_from_db()
    assert note.kind == "credit_note" and note.credited_invoice == invoice
    assert (note.display_number, note.status, note.gross_total) == ("K-000001", Status.PAID, 276553)
    assert note.ocr_reference == ""
    assert (invoice.amount_credited, invoice.amount_due, invoice.status) == (276553, 0, Status.PAID)
    assert audit_events("invoice.finalized", note)[0].details["number"] == "K-000001"
    [event] = audit_events("invoice.credited", invoice)
    assert event.details["amount"] == 276553 and event.details["status"] == "paid"


def test_a_partial_credit_note_reduces_the_amount_due(invoice: Invoice, clerk: User) -> None:
    consulting = invoice.lines.get(description="Consulting")
    note = services.issue_credit_note(
        invoice, by=clerk, lines=[CreditLine(consulting.pk, Decimal("1"))]
    )
    invoice.refresh_from_db()
    assert (note.net_total, note.vat_total, note.gross_total) == (100000, 25000, 125000)
    assert (invoice.status, invoice.amount_due) == (Status.OPEN, 276553 - 125000)
    assert note.lines.get().credited_line == consulting


def test_a_line_cannot_be_credited_beyond_its_quantity(invoice: Invoice, clerk: User) -> None:
    consulting = invoice.lines.get(description="Consulting")
    services.issue_credit_note(invoice, by=clerk, lines=[CreditLine(consulting.pk, Decimal("1.5"))])
    before = table_snapshot()
    with pytest.raises(CreditExceedsRemaining) as excinfo:
        services.issue_credit_note(
            invoice, by=clerk, lines=[CreditLine(consulting.pk, Decimal("0.6"))]
        )
    assert excinfo.value.field == "quantity"
    assert table_snapshot() == before
    assert len(audit_events("invoice.credited", invoice)) == 1


def test_a_credit_note_beyond_the_amount_due_is_refused(invoice: Invoice, clerk: User) -> None:
    services.record_payment_amount(invoice, amount=Money(200000, "SEK"), by=clerk)
    before = table_snapshot()
    with pytest.raises(CreditExceedsRemaining) as excinfo:
        services.issue_credit_note(invoice, by=clerk)
    assert excinfo.value.field == "credit_note"
    assert "below zero" in str(excinfo.value)
    assert table_snapshot() == before
    assert not audit_events("invoice.credited")


def test_nothing_is_left_to_credit_after_a_full_credit(invoice: Invoice, clerk: User) -> None:
    services.issue_credit_note(invoice, by=clerk)
    with pytest.raises(InvalidStatusTransition):
        services.issue_credit_note(invoice, by=clerk)


def test_drafts_voided_invoices_and_credit_notes_cannot_be_credited(
    make_draft_invoice: MakeInvoice, invoice: Invoice, alice_company: Customer, clerk: User
) -> None:
    draft = make_draft_invoice(alice_company)
    with pytest.raises(InvalidStatusTransition):
        services.issue_credit_note(draft, by=clerk)
    note = services.issue_credit_note(
        invoice,
        by=clerk,
        lines=[CreditLine(invoice.lines.first().pk, Decimal("1"))],  # type: ignore[union-attr]
    )
    with pytest.raises(InvalidStatusTransition):
        services.issue_credit_note(note, by=clerk)


def test_partial_credits_that_add_up_to_everything_end_at_exactly_zero(
    make_open_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    # 3 x 0.333 = 0.999 -> 1.00 net; one-third credits round to 0.33 each.
    invoice = make_open_invoice(alice_company, [line("Screws", "3", "0.333")])
    screws = invoice.lines.get()
    for _ in range(3):
        services.issue_credit_note(invoice, by=clerk, lines=[CreditLine(screws.pk, Decimal("1"))])
    invoice.refresh_from_db()
    assert (invoice.amount_credited, invoice.amount_due, invoice.status) == (125, 0, Status.PAID)


_line_specs = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=7),  # quantity
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999.99"), places=3),
        st.sampled_from(["25", "12", "6"]),
    ),
    min_size=1,
    max_size=4,
)
_credits = st.lists(
    st.tuples(st.integers(min_value=0, max_value=3), st.integers(min_value=1, max_value=4)),
    min_size=1,
    max_size=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=_line_specs, credits=_credits, paid_share=st.integers(min_value=0, max_value=3))
def test_credit_notes_never_take_an_invoice_below_zero(
    specs: list[tuple[int, Decimal, str]],
    credits: list[tuple[int, int]],
    paid_share: int,
) -> None:
    clerk = User.objects.filter(username="h-clerk").first() or make_user("h-clerk", is_staff=True)
    make_company()
    customer = make_customer("Hypo AB")
    draft = services.create_draft_invoice(
        customer=customer,
        lines=[line("x", str(q), price, vat_rate=rate) for q, price, rate in specs],
        by=clerk,
    )
    invoice = services.finalize_invoice(draft, by=clerk)
    assert invoice.net_total == sum(ln.net_amount for ln in invoice.lines.all())
    assert invoice.net_total + invoice.vat_total == invoice.gross_total
    if paid_share:
        services.record_payment_amount(
            invoice, amount=Money(invoice.gross_total * paid_share // 4 or 1, "SEK"), by=clerk
        )
    line_ids = list(invoice.lines.order_by("position").values_list("pk", flat=True))
    for index, quantity in credits:
        target = line_ids[index % len(line_ids)]
        try:
            note = services.issue_credit_note(
                invoice, by=clerk, lines=[CreditLine(target, Decimal(quantity) / 2)]
            )
        except (CreditExceedsRemaining, InvalidStatusTransition):
            continue
        assert note.net_total + note.vat_total == note.gross_total
        invoice.refresh_from_db()
        assert invoice.amount_due >= 0
    invoice.refresh_from_db()
    assert 0 <= invoice.amount_paid + invoice.amount_credited <= invoice.gross_total
    credited = sum(
        Invoice.objects.filter(credited_invoice=invoice).values_list("gross_total", flat=True)
    )
    assert credited == invoice.amount_credited
    if paid_share == 0:
        # Whatever is left can always be credited, and then nothing is due at all.
        if invoice.amount_due:
            services.issue_credit_note(invoice, by=clerk)
            invoice.refresh_from_db()
        assert invoice.amount_due == 0 and invoice.amount_credited == invoice.gross_total
        assert invoice.status == Status.PAID
