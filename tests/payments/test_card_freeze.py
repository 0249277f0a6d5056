"""Freezing card payments (an incident's containment): no card payment starts, saved or new,
until the freeze is lifted; customers read the calm sentence; freezing is audited."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import translation

from billing.models import Invoice
from payments import freeze, services
from payments.exceptions import CardPaymentsFrozen, FreezeRefused
from payments.models import CardPaymentFreeze, Payment, PaymentMethod
from payments.vault import services as key_services
from security.models import User
from tests.factories import audit_events, make_user
from tests.mfa_helpers import stepped_up_request as stepped_up
from tests.payments.fixtures import APPROVED, key, sek
from tests.payments.test_card_entry import sealed

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer(db: None) -> User:
    user = make_user("sofia", is_staff=True)
    user.groups.add(Group.objects.get(name="Security officer"))
    return User.objects.get(pk=user.pk)


def test_a_frozen_platform_takes_no_card_payment_until_the_freeze_is_lifted(
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
    alice: User,
    officer: User,
) -> None:
    card = saved_card(APPROVED)
    frozen = freeze.freeze_card_payments(
        reason="card data exposure suspected", by=officer, request=stepped_up(officer)
    )
    (event,) = audit_events("payments.card_payments_frozen", frozen)
    assert event.details["reason"] == "card data exposure suspected"

    with pytest.raises(CardPaymentsFrozen) as refused:
        services.pay_invoice(
            thousand_sek_invoice,
            amount=sek(1000),
            payment_method=card,
            idempotency_key=key(1),
            by=alice,
        )
    assert "nothing was charged" in str(refused.value)
    cards_before = PaymentMethod.objects.count()
    with pytest.raises(CardPaymentsFrozen):
        services.pay_invoice_with_new_card(
            thousand_sek_invoice,
            amount=sek(1000),
            card=sealed(
                key_services.current_entry_key(),
                {"number": APPROVED, "expiry": "12/39", "cvc": "123"},
                alice,
            ),
            keep_card=False,
            idempotency_key=key(2),
            by=alice,
        )
    assert PaymentMethod.objects.count() == cards_before  # the new card was never stored
    assert not Payment.objects.exists()

    freeze.lift_card_payment_freeze(by=officer, request=stepped_up(officer))
    payment = services.pay_invoice(
        thousand_sek_invoice,
        amount=sek(1000),
        payment_method=card,
        idempotency_key=key(3),
        by=alice,
    )
    assert payment.status == Payment.Status.SUCCEEDED
    assert audit_events("payments.card_payments_unfrozen", frozen)


def test_one_freeze_at_a_time_and_nothing_to_lift_when_open(officer: User) -> None:
    request = stepped_up(officer)
    with pytest.raises(FreezeRefused) as nothing:
        freeze.lift_card_payment_freeze(by=officer, request=request)
    assert nothing.value.field == "freeze"
    freeze.freeze_card_payments(reason="first", by=officer, request=request)
    with pytest.raises(FreezeRefused) as twice:
        freeze.freeze_card_payments(reason="second", by=officer, request=request)
    assert twice.value.field == "freeze"
    assert CardPaymentFreeze.objects.count() == 1


def test_the_portal_says_card_payments_are_unavailable_while_frozen(
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
    alice_client: Client,
    officer: User,
) -> None:
    card = saved_card(APPROVED)
    freeze.freeze_card_payments(reason="incident", by=officer, request=stepped_up(officer))
    url = f"/portal/invoices/{thousand_sek_invoice.pk}/pay/"
    response = alice_client.post(
        url, {"amount": "1000.00", "payment_method": card.pk, "idempotency_key": key(9)}
    )
    assert response.status_code == 503
    with translation.override("sv"):  # Alice reads Swedish
        calm = translation.gettext("Card payments are unavailable right now; nothing was charged.")
    assert calm in response.content.decode()
    assert not Payment.objects.exists()
