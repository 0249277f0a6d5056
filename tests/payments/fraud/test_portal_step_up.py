"""A step-up rule in the portal: a payer whose second factor is not fresh is sent to
confirm it, nothing held or charged; with a fresh one the payment goes through."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.models import Invoice
from payments.fraud.rule_services import create_fraud_rule
from payments.gateways.models import SandboxCharge
from payments.models import Payment, PaymentMethod
from security.models import User
from tests.mfa_helpers import give_totp_device, mark_client_verified
from tests.payments.fixtures import APPROVED

pytestmark = pytest.mark.django_db


@pytest.fixture
def step_up_rule(analyst: User) -> None:
    create_fraud_rule(
        action="step_up",
        expression="amount >= 100",
        description="a second factor for payments of 100 or more",
        enabled=True,
        by=analyst,
    )


def test_a_stale_second_factor_is_sent_to_step_up_and_nothing_is_held(
    step_up_rule: None,
    alice: User,
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
) -> None:
    card = saved_card(APPROVED)
    client = Client()
    client.force_login(alice)
    mark_client_verified(client, give_totp_device(alice))
    pay = reverse("portal_pay:pay", args=[thousand_sek_invoice.pk])
    form = {"amount": "1000", "payment_method": card.pk, "idempotency_key": "k" * 32}

    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=10)):
        stale = client.post(pay, form)

    assert stale.status_code == 302
    assert stale["Location"] == f"{reverse('security:step_up')}?next={pay.replace('/', '%2F')}"
    assert not Payment.objects.exists() and not SandboxCharge.objects.exists()

    fresh = client.post(pay, form)  # confirmed just now (as after the step-up page)

    assert fresh.status_code == 302
    payment = Payment.objects.get()
    assert (payment.status, payment.risk_decision) == ("succeeded", "allow")
    assert any(m["rule"] == "step_up_passed" for m in payment.risk_evaluation.matched)
