"""Billing's side of a refund: with a credit note (the invoice stays settled) or reopening
(the amount is owed again). Each is an explicit service; neither goes below zero."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import services
from billing.delivery.models import Delivery
from billing.exceptions import InvalidStatusTransition, RefundExceedsPaid
from billing.models import Customer, Invoice
from billing.money import Money
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

Status = Invoice.Status
GROSS = 276_553  # 2 x 1,000.00 at 25 % and 250.50 at 6 %: 2,765.53 SEK


@pytest.fixture
def paid_invoice(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer, clerk: User
) -> Invoice:
    invoice = make_open_invoice(
        alice_company, [line("Consulting", "2", "1000"), line("Books", "1", "250.50", vat_rate="6")]
    )
    assert invoice.gross_total == GROSS
    return services.record_payment_amount(invoice, amount=Money(GROSS, "SEK"), by=clerk)


def groups(breakdown: list[dict[str, object]]) -> Counter[tuple[str, Decimal, str]]:
    counted: Counter[tuple[str, Decimal, str]] = Counter()
    for group in breakdown:
        key = (str(group["category"]), Decimal(str(group["rate"])))
        counted[(*key, "taxable")] += int(str(group["taxable_amount"]))
        counted[(*key, "vat")] += int(str(group["vat_amount"]))
    return counted


def test_a_partial_refund_with_a_credit_note_reduces_each_vat_group_in_proportion(
    paid_invoice: Invoice, clerk: User
) -> None:
    note = services.record_refund_with_credit_note(
        paid_invoice, amount=Money(100_000, "SEK"), reason="price reduced", by=clerk
    )

    paid_invoice.refresh_from_db()
    assert (paid_invoice.status, paid_invoice.amount_paid, paid_invoice.amount_credited) == (
        Status.PAID,
        GROSS - 100_000,
        100_000,
    )
    assert note.gross_total == 100_000 and note.net_total + note.vat_total == 100_000
    by_group = groups(note.vat_breakdown)
    # 2,500.00 of the 2,765.53 is at 25 %: that share of 1,000.00 (903.99), the rest at 6 %.
    assert by_group[("S", Decimal(25), "taxable")] + by_group[("S", Decimal(25), "vat")] == 90_399
    assert by_group[("S", Decimal(6), "taxable")] + by_group[("S", Decimal(6), "vat")] == 9_601
    assert by_group[("S", Decimal(25), "vat")] == 18_080  # 90,399 x 25/125 = 18,079.8, half-up
    assert {ln.credited_line_id for ln in note.lines.all()} == {None}
    assert all("F-" in ln.description for ln in note.lines.all())
    [event] = audit_events("invoice.refund_recorded", paid_invoice)
    assert (event.details["purpose"], event.details["credit_note"]) == (
        "credit_note",
        note.display_number,
    )
    assert Delivery.objects.filter(invoice=paid_invoice, kind=Delivery.Kind.REFUND).count() == 1


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.integers(min_value=1, max_value=GROSS - 1))
def test_refunds_with_credit_notes_credit_exactly_the_invoice_in_the_end(first: int) -> None:
    clerk = User.objects.filter(username="h-clerk").first() or make_user("h-clerk", is_staff=True)
    make_company()
    draft = services.create_draft_invoice(
        customer=make_customer("Hypo AB"),
        lines=[line("Consulting", "2", "1000"), line("Books", "1", "250.50", vat_rate="6")],
        by=clerk,
    )
    invoice = services.finalize_invoice(draft, by=clerk)
    services.record_payment_amount(invoice, amount=Money(GROSS, "SEK"), by=clerk)

    one = services.record_refund_with_credit_note(
        invoice, amount=Money(first, "SEK"), reason="a", by=clerk
    )
    two = services.record_refund_with_credit_note(
        invoice, amount=Money(GROSS - first, "SEK"), reason="b", by=clerk
    )

    invoice.refresh_from_db()
    assert (one.gross_total, two.gross_total) == (first, GROSS - first)
    assert (invoice.amount_paid, invoice.amount_credited, invoice.status) == (0, GROSS, "paid")
    # Taxable amount and VAT of each group: the two notes together are the invoice.
    assert groups(one.vat_breakdown) + groups(two.vat_breakdown) == groups(invoice.vat_breakdown)


def test_a_refund_beyond_what_was_paid_is_refused_and_changes_nothing(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer, clerk: User
) -> None:
    invoice = make_open_invoice(alice_company, [line("Licence", "1", "800")])
    services.record_payment_amount(invoice, amount=Money(50_000, "SEK"), by=clerk)
    before = table_snapshot()

    for refund in (services.record_refund_with_credit_note, services.record_refund_reopening):
        with pytest.raises(RefundExceedsPaid) as refused:
            refund(invoice, amount=Money(50_001, "SEK"), reason="too much", by=clerk)
        assert refused.value.field == "amount"

    assert table_snapshot() == before
    assert not Delivery.objects.exists()


def test_a_credit_note_takes_no_refund(paid_invoice: Invoice, clerk: User) -> None:
    note = services.record_refund_with_credit_note(
        paid_invoice, amount=Money(100, "SEK"), reason="x", by=clerk
    )
    with pytest.raises(InvalidStatusTransition):
        services.record_refund_reopening(note, amount=Money(1, "SEK"), reason="x", by=clerk)


def test_reopening_owes_the_amount_again_and_queues_the_notice(
    paid_invoice: Invoice, clerk: User
) -> None:
    reopened = services.record_refund_reopening(
        paid_invoice, amount=Money(10_000, "SEK"), reason="chargeback", by=clerk
    )

    assert (reopened.status, reopened.amount_due) == (Status.OPEN, 10_000)
    assert not Invoice.objects.credit_notes().exists()
    [notice] = Delivery.objects.filter(invoice=paid_invoice)
    assert notice.kind == Delivery.Kind.REOPENED
