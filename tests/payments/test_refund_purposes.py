"""Refunds say what they are for: with a credit note (the invoice stays settled, the
customer gets the credit note and a refund receipt) or reopening the invoice (the amount
is owed again, the customer is told). Never silently reopened; no choice, no refund."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from billing.delivery.models import Delivery
from billing.models import Invoice
from payments import services
from payments.exceptions import RefundRefused
from payments.gateways.models import SandboxCharge, SandboxRefund
from payments.models import Payment, PaymentMethod, Refund
from security.models import User
from tests.factories import audit_events, make_user
from tests.mfa_helpers import stepped_up_request as fresh_step_up
from tests.payments.fixtures import APPROVED, key, sek

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> User:
    user = make_user("operator", is_staff=True)
    for codename in ("view_payment", "refund_payment"):
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="payments", codename=codename)
        )
    return User.objects.get(pk=user.pk)


@pytest.fixture
def paid(
    thousand_sek_invoice: Invoice, saved_card: Callable[[str], PaymentMethod], alice: User
) -> Payment:
    """Alice's 1,000 SEK invoice (800 + 25 % VAT), paid in full by card."""
    return services.pay_invoice(
        thousand_sek_invoice,
        amount=sek(1000),
        payment_method=saved_card(APPROVED),
        idempotency_key=key("paid"),
        by=alice,
    )


def refund_url(payment: Payment) -> str:
    return reverse("admin:payments_payment_refund", args=[payment.pk])


def invoice_of(payment: Payment) -> Invoice:
    return Invoice.objects.get(pk=payment.invoice_id)


# --- with a credit note ------------------------------------------------------------------


def test_a_refund_with_a_credit_note_keeps_the_invoice_paid_and_issues_the_note(
    paid: Payment, operator: User, admin_client_for: Callable[[User], Client]
) -> None:
    response = admin_client_for(operator).post(
        refund_url(paid),
        {"amount": "400.00", "purpose": "credit_note", "reason": "two seats returned"},
        follow=True,
    )

    invoice = invoice_of(paid)
    assert (invoice.status, invoice.amount_paid, invoice.amount_credited, invoice.amount_due) == (
        Invoice.Status.PAID,
        60_000,
        40_000,
        0,
    )
    refund = Refund.objects.get()
    note = refund.credit_note
    assert note is not None and note.is_credit_note and note.credited_invoice_id == invoice.pk
    assert note.display_number.startswith("K-")
    assert (note.net_total, note.vat_total, note.gross_total) == (32_000, 8_000, 40_000)
    assert SandboxCharge.objects.get().refunded_amount == 40_000
    # The customer gets the credit note (its PDF is signed and delivered as any invoice
    # is: queued on finalize) and a refund receipt.
    assert audit_events("invoice.finalized", note)
    assert Delivery.objects.filter(invoice=invoice, kind=Delivery.Kind.REFUND).count() == 1
    assert not Delivery.objects.filter(kind=Delivery.Kind.REOPENED).exists()
    [refunded] = audit_events("payment.refunded", paid)
    assert (refunded.details["purpose"], refunded.details["credit_note"]) == (
        "credit_note",
        note.display_number,
    )
    [recorded] = audit_events("invoice.refund_recorded", invoice)
    assert (recorded.details["purpose"], recorded.details["status"]) == ("credit_note", "paid")
    page = response.content.decode()
    assert f"Credit note {note.display_number} issued" in page


def test_a_full_refund_with_a_credit_note_credits_every_line(paid: Payment, operator: User) -> None:
    services.refund_payment(
        paid,
        amount=sek(1000),
        reason="order cancelled",
        purpose="credit_note",
        by=operator,
        request=fresh_step_up(operator),
    )

    invoice = invoice_of(paid)
    note = Refund.objects.get().credit_note
    assert note is not None
    [note_line] = note.lines.all()
    assert note_line.credited_line_id == invoice.lines.get().pk
    assert (invoice.status, invoice.amount_paid, invoice.amount_credited) == ("paid", 0, 100_000)


# --- reopening -----------------------------------------------------------------------------


def test_reopening_makes_the_amount_owed_again_and_tells_the_customer(
    paid: Payment, operator: User, admin_client_for: Callable[[User], Client]
) -> None:
    response = admin_client_for(operator).post(
        refund_url(paid),
        {"amount": "400.00", "purpose": "reopen", "reason": "chargeback from the bank"},
        follow=True,
    )

    invoice = invoice_of(paid)
    assert (invoice.status, invoice.amount_due) == (Invoice.Status.OPEN, 40_000)
    assert Refund.objects.get().credit_note is None
    assert not Invoice.objects.credit_notes().exists()
    assert Delivery.objects.filter(invoice=invoice, kind=Delivery.Kind.REOPENED).count() == 1
    assert "owed again: invoice" in response.content.decode()


# --- no choice, no refund --------------------------------------------------------------------


def test_the_refund_page_asks_what_the_refund_is_for_and_warns_before_reopening(
    paid: Payment, operator: User, admin_client_for: Callable[[User], Client]
) -> None:
    page = admin_client_for(operator).get(refund_url(paid)).content.decode()

    assert 'value="credit_note"' in page and 'value="reopen"' in page
    assert "checked" not in page.split('name="purpose"')[1].split("</fieldset>")[0]
    assert 'id="reopen-warning"' in page and "owed again" in page


def test_a_refund_without_its_purpose_is_refused_and_changes_nothing(
    paid: Payment, operator: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(operator)
    events = AuditEvent.objects.count()

    response = client.post(refund_url(paid), {"amount": "400.00", "reason": "goodwill"})

    assert response.status_code == 200
    assert "Choose what the refund is for" in response.content.decode()
    assert not Refund.objects.exists() and not SandboxRefund.objects.exists()
    assert invoice_of(paid).status == Invoice.Status.PAID
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("purpose", ["", "void", None])
def test_the_service_refuses_a_refund_without_a_known_purpose(
    paid: Payment, operator: User, purpose: object
) -> None:
    with pytest.raises(RefundRefused) as refused:
        services.refund_payment(
            paid,
            amount=sek(100),
            reason="goodwill",
            purpose=purpose,  # type: ignore[arg-type]
            by=operator,
            request=fresh_step_up(operator),
        )

    assert refused.value.field == "purpose"
    assert not Refund.objects.exists() and not SandboxRefund.objects.exists()
    assert not audit_events("payment.refund_requested")


# --- what the customer sees -------------------------------------------------------------------


def test_the_customer_gets_a_refund_receipt_page_and_bob_does_not(
    paid: Payment,
    operator: User,
    alice_client: Client,
    bob: User,
) -> None:
    services.refund_payment(
        paid,
        amount=sek(400),
        reason="two seats returned",
        purpose="credit_note",
        by=operator,
        request=fresh_step_up(operator),
    )
    refund = Refund.objects.get()
    url = reverse("portal_pay:refund", args=[refund.pk])
    bob_client = Client()
    bob_client.force_login(bob)

    receipt = alice_client.get(url)
    invoice_page = alice_client.get(reverse("portal:invoice", args=[paid.invoice_id])).content
    payment_page = alice_client.get(reverse("portal_pay:payment", args=[paid.pk])).content

    assert receipt.status_code == 200
    assert refund.credit_note is not None
    assert refund.credit_note.display_number in receipt.content.decode()
    assert url in invoice_page.decode() and url in payment_page.decode()
    assert refund.credit_note.display_number in invoice_page.decode()
    assert bob_client.get(url).status_code == 404
    assert bob_client.get(reverse("portal_pay:refund", args=[10**9])).status_code == 404


def test_an_automatic_compensation_is_not_a_refund_receipt(
    paid: Payment, alice_client: Client
) -> None:
    compensation = Refund.objects.create(
        payment=paid,
        amount=100,
        currency="SEK",
        reason="automatic",
        idempotency_key="ref_test",
        compensation=True,
    )

    response = alice_client.get(reverse("portal_pay:refund", args=[compensation.pk]))

    assert response.status_code == 404


def test_a_reason_on_several_lines_makes_a_one_line_credit_note_a_control_character_is_refused(
    paid: Payment, operator: User
) -> None:
    with pytest.raises(RefundRefused) as refused:
        services.refund_payment(
            paid,
            amount=sek(100),
            reason="broken\x07",
            purpose="credit_note",
            by=operator,
            request=fresh_step_up(operator),
        )
    assert refused.value.field == "reason"
    assert not Refund.objects.exists() and not SandboxRefund.objects.exists()

    services.refund_payment(
        paid,
        amount=sek(100),
        reason="two seats returned\r\nagreed by phone",
        purpose="credit_note",
        by=operator,
        request=fresh_step_up(operator),
    )

    note = Refund.objects.get().credit_note
    assert note is not None
    assert note.lines.get().description.endswith("two seats returned agreed by phone")
