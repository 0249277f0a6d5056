"""A whole journey across apps: an invoice is finalized, partly paid by bank transfer,
paid in full by card in the portal, partly refunded; the audit chain tells the story
in order and still verifies."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from audit import SYSTEM
from audit.models import AuditEvent
from audit.verify import verify_chain
from billing.models import Customer, Invoice
from billing.money import Money
from payments.models import Payment
from payments.reconciliation.camt054 import sample_camt054
from payments.reconciliation.review import apply_bank_line
from payments.reconciliation.services import import_bank_file
from payments.services import refund_payment
from security.models import User
from tests.factories import line
from tests.payments import conftest as payments_conftest
from tests.payments import fixtures as payment_fixtures
from tests.payments.fixtures import APPROVED

pytestmark = pytest.mark.django_db

vault_keyring = payments_conftest.vault_keyring
saved_card = payment_fixtures.saved_card


class _FreshStepUp:
    """A request whose second factor was verified just now (what the admin view passes)."""

    def __init__(self, user: User) -> None:
        from django.utils import timezone

        from security.selectors import MFA_VERIFIED_AT_KEY

        self.user = user
        self.user.is_verified = lambda: True  # type: ignore[attr-defined]
        self.session = {MFA_VERIFIED_AT_KEY: timezone.now().timestamp()}
        self.META: dict[str, str] = {}


def test_an_invoice_from_finalizing_to_refund(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    alice: User,
    clerk: User,
    saved_card: Callable[[str], object],
) -> None:
    from django.contrib.auth.models import Permission

    invoice = make_open_invoice(alice_company, [line("Licence", "1", "800.00")])
    card = saved_card(APPROVED)
    # 1. 300 SEK arrive by bank with the right OCR: a partial payment, reviewed and applied.
    import_bank_file(
        sample_camt054([{"amount": "300.00", "reference": invoice.ocr_reference}]),
        filename="day.xml",
        by=SYSTEM,
    )
    apply_bank_line(invoice.bank_lines.model.objects.get(), invoice=invoice, by=clerk)
    # 2. Alice pays the remaining 700 SEK by card in the portal.
    client = Client()
    client.force_login(alice)
    response = client.post(
        reverse("portal_pay:pay", args=[invoice.pk]),
        {"amount": "700,00", "payment_method": card.pk, "idempotency_key": "flow-0001"},  # type: ignore[attr-defined]
    )
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    # 3. An operator refunds 100 SEK of the card payment: the invoice reopens.
    operator = User.objects.create_user(username="operator", is_staff=True)
    operator.user_permissions.add(Permission.objects.get(codename="refund_payment"))
    operator = User.objects.get(pk=operator.pk)
    card_payment = Payment.objects.get(method="card")
    refund_payment(
        card_payment,
        amount=Money(10_000, "SEK"),
        reason="one seat cancelled",
        purpose="reopen",
        by=operator,
        request=_FreshStepUp(operator),  # type: ignore[arg-type]
    )
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due) == (Invoice.Status.OPEN, 10_000)

    story = [
        action
        for action in AuditEvent.objects.filter(
            object_type__in=["billing.invoice", "payments.payment", "payments.bankline"]
        )
        .order_by("seq")
        .values_list("action", flat=True)
        if action.startswith(("invoice.", "payment.", "bank_line."))
    ]
    assert story == [
        "invoice.draft_created",
        "invoice.finalized",
        "invoice.payment_recorded",
        "payment.bank_transfer_recorded",
        "bank_line.applied",
        "payment.started",
        "invoice.payment_recorded",
        "payment.succeeded",
        "payment.refund_requested",
        "invoice.refund_recorded",
        "invoice.delivery_queued",  # the customer is told the amount is owed again
        "payment.refunded",
    ]
    assert verify_chain().ok
