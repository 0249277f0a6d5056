"""Customer Bob's things, seeded for the attack tests: what Alice and strangers go after.

``bob_victim`` (a fixture) gives a :class:`tests.security.url_catalogue.Victim` whose
values are Bob's invoice, paid invoice, payment, refund, saved card, session, delivery
link and user, each named by the URL argument that takes it.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.contrib.auth.tokens import default_token_generator
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from billing.delivery.models import Delivery, InvoiceLink
from billing.models import Customer, Invoice
from billing.money import Money
from payments.models import Payment
from payments.services import pay_invoice, refund_payment
from payments.vault.cards import Card
from payments.vault.services import tokenize
from security.models import User, UserSession
from security.selectors import MFA_VERIFIED_AT_KEY
from tests.factories import line, make_user
from tests.payments.fixtures import APPROVED
from tests.security.url_catalogue import Victim

BOB_LINK_TOKEN = "bobs-delivery-link-token-0123456789abcdefgh"


class _FreshStepUp:
    """The request an operator's refund carries: a second factor verified just now."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.user.is_verified = lambda: True  # type: ignore[attr-defined]
        self.session = {MFA_VERIFIED_AT_KEY: timezone.now().timestamp()}
        self.META: dict[str, str] = {}


def _refunded_payment(payment: Payment) -> Any:
    operator = make_user("operator-for-bob", is_staff=True)
    operator.user_permissions.add(Permission.objects.get(codename="refund_payment"))
    operator = User.objects.get(pk=operator.pk)
    return refund_payment(
        payment,
        amount=Money(1_000, payment.currency),
        reason="one seat cancelled",
        purpose="reopen",
        by=operator,
        request=_FreshStepUp(operator),  # type: ignore[arg-type]
    )


@pytest.fixture
def bob_victim(
    vault_keyring: Any,
    bob: User,
    bob_company: Customer,
    make_open_invoice: Callable[..., Invoice],
) -> Victim:
    """Bob's seeded objects, by URL argument (see the module's docstring)."""
    open_invoice = make_open_invoice(bob_company, [line("Scaffolding", "1", "800.00")])
    paid_invoice = make_open_invoice(bob_company, [line("Cranes", "1", "400.00")])
    card = tokenize(
        Card.from_input(number=APPROVED, expiry="12/39", cvc="123"), customer=bob_company, by=bob
    )
    payment = pay_invoice(
        paid_invoice,
        amount=Money(paid_invoice.amount_due, paid_invoice.currency),
        payment_method=card,
        idempotency_key="bob-pays-0001",
        by=bob,
    )
    refunded_invoice = make_open_invoice(bob_company, [line("Ladders", "1", "100.00")])
    refund = _refunded_payment(
        pay_invoice(
            refunded_invoice,
            amount=Money(refunded_invoice.amount_due, refunded_invoice.currency),
            payment_method=card,
            idempotency_key="bob-pays-0002",
            by=bob,
        )
    )
    bob_browser = Client()
    bob_browser.force_login(bob)
    session = UserSession.objects.filter(user=bob).latest("pk")
    now = timezone.now()
    InvoiceLink.objects.create(
        invoice=open_invoice,
        token_sha256=hashlib.sha256(BOB_LINK_TOKEN.encode()).hexdigest(),
        created_at=now,
        expires_at=now + datetime.timedelta(days=1),
    )
    delivery = Delivery.objects.filter(invoice__customer=bob_company).order_by("pk").first()
    invoice_type = ContentType.objects.get_for_model(Invoice)
    invoice_pk = str(open_invoice.pk)
    return Victim(
        {
            "*": {
                "invoice_id": invoice_pk,
                "version": "1",
                "token": BOB_LINK_TOKEN,
                "uidb64": urlsafe_base64_encode(force_bytes(bob.pk)),
                "delivery_id": str(delivery.pk if delivery else 1),
                "content_type_id": str(invoice_type.pk),
                "object_id": invoice_pk,
                "app_label": "billing",
                "url": "no-such-page/",
            },
            "portal:invoice": {"pk": invoice_pk},
            "portal:receipt": {"pk": str(paid_invoice.pk)},
            "portal_pay:pay": {"pk": invoice_pk},
            "portal_pay:payment": {"pk": str(payment.pk)},
            "portal_pay:refund": {"pk": str(refund.pk)},
            "portal_pay:delete_card": {"pk": str(card.pk)},
            "security:end_session": {"pk": str(session.pk)},
            "security:user_roles": {"pk": str(bob.pk)},
            "security:reset_credentials": {"pk": str(bob.pk)},
            "security:password_reset_confirm": {"token": default_token_generator.make_token(bob)},
            # The REST API (/api/v1/): Bob's records by id.
            "api-customer-detail": {"pk": str(bob_company.pk)},
            **{
                f"api-invoice-{route}": {"pk": invoice_pk}
                for route in ("detail", "lines", "finalize", "void", "credit-notes", "pdf")
            },
            "api-payment-detail": {"pk": str(payment.pk)},
            "api-payment-refunds": {"pk": str(payment.pk)},
            "api-payment-method-detail": {"pk": str(card.pk)},
            "model": {
                "billing.invoice": invoice_pk,
                "billing.customer": str(bob_company.pk),
                "payments.payment": str(payment.pk),
                "payments.refund": str(refund.pk),
                "payments.paymentmethod": str(card.pk),
                "security.user": str(bob.pk),
                "security.usersession": str(session.pk),
            },
        }
    )
