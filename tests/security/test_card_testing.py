"""Issue 17, item 4: card testing was not throttled.

30 different valid card numbers at 0.01 SEK in 6.6 s all succeeded with risk "allow"
(the rules counted only failures). Now a card payment has a minimum amount (unless it
pays the whole rest), too many new cards for one customer or from one network address
block the attempt and hold the customer (or address) until a fraud analyst reviews it:
a burst is stopped within a few attempts.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from billing.models import Customer, Invoice
from payments.fraud.models import RiskHold
from payments.gateways.models import SandboxCharge
from payments.models import Payment, PaymentMethod
from security.models import User
from security.roles import FRAUD_ANALYST
from tests.factories import audit_events, line, make_user
from tests.payments.conftest import vault_keyring  # noqa: F401 - a keyring per test
from tests.payments.fixtures import APPROVED, saved_card  # noqa: F401
from tests.payments.test_card_entry import form_payload

pytestmark = pytest.mark.django_db

ATTACKER_ADDRESS = "81.2.69.160"


def luhn_card(n: int) -> str:
    """The n-th valid Visa test-like number 4000 0012 34nn nnn? (Luhn check digit)."""
    body = f"400001234{n:06d}"
    total = 0
    for index, digit in enumerate(int(d) for d in reversed(body)):
        doubled = digit * 2 if index % 2 == 0 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return body + str((10 - total % 10) % 10)


def _client(user: User) -> Client:
    client = Client(REMOTE_ADDR=ATTACKER_ADDRESS)
    client.force_login(user)
    return client


def _pay_new_card(client: Client, invoice: Invoice, number: str, amount: str, n: int) -> int:
    url = reverse("portal_pay:pay", args=[invoice.pk])
    payload = form_payload(client, url, {"number": number, "expiry": "12/39", "cvc": "123"})
    response = client.post(
        url, {"amount": amount, "card_payload": payload, "idempotency_key": f"burst-{n:04d}-key"}
    )
    return response.status_code


@pytest.fixture
def big_invoice(make_open_invoice: Callable[..., Invoice], alice_company: Customer) -> Invoice:
    return make_open_invoice(alice_company, [line("Annual licence", "1", "8000.00")])


def test_a_tiny_card_payment_is_refused_before_the_card_is_stored(
    alice: User,
    big_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],  # noqa: F811
) -> None:
    client = _client(alice)
    card = saved_card(APPROVED)
    url = reverse("portal_pay:pay", args=[big_invoice.pk])

    saved = client.post(
        url, {"amount": "0.01", "payment_method": card.pk, "idempotency_key": "tiny" * 4}
    )
    new = _pay_new_card(client, big_invoice, luhn_card(1), "0.01", 1)

    assert (saved.status_code, new) == (400, 400)
    assert "10.00" in saved.content.decode() or "10,00" in saved.content.decode()
    assert not Payment.objects.exists() and not SandboxCharge.objects.exists()
    assert PaymentMethod.objects.count() == 1  # only the saved card: the new one never stored


def test_a_burst_of_new_cards_is_stopped_within_a_few_attempts(
    alice: User, big_invoice: Invoice
) -> None:
    client = _client(alice)

    for n in range(30):
        _pay_new_card(client, big_invoice, luhn_card(n), "10.00", n)

    assert SandboxCharge.objects.count() <= 3
    blocked = Payment.objects.filter(failure_code="risk_blocked")
    assert blocked.count() >= 27
    rules = {reason["rule"] for p in blocked for reason in p.risk_reasons}
    assert {"new_cards_customer", "held_for_review"} <= rules
    hold = RiskHold.objects.get(kind=RiskHold.Kind.CUSTOMER)
    assert hold.customer_id == big_invoice.customer_id and hold.lifted_at is None
    (held,) = audit_events("fraud.payments_held")
    assert held.details["rule"] == "new_cards_customer"


def test_new_cards_from_one_address_across_customers_are_stopped(
    alice: User,
    bob: User,
    big_invoice: Invoice,
    bob_company: Customer,
    make_open_invoice: Callable[..., Invoice],
) -> None:
    bobs_invoice = make_open_invoice(bob_company, [line("Work", "1", "800.00")])
    alice_client, bob_client = _client(alice), _client(bob)

    for n in range(3):  # within Alice's own limit
        _pay_new_card(alice_client, big_invoice, luhn_card(100 + n), "10.00", n)
    for n in range(3):  # within Bob's, but the sixth card from this address
        _pay_new_card(bob_client, bobs_invoice, luhn_card(200 + n), "5.00", 10 + n)

    assert SandboxCharge.objects.count() == 5
    hold = RiskHold.objects.get(kind=RiskHold.Kind.ADDRESS)
    assert hold.address == ATTACKER_ADDRESS
    assert Payment.objects.get(failure_code="risk_blocked").client_ip == ATTACKER_ADDRESS


def test_an_analyst_lifts_the_hold_after_review_with_step_up(
    alice: User, big_invoice: Invoice, admin_client_for: Callable[[User], Client]
) -> None:
    client = _client(alice)
    for n in range(5):
        _pay_new_card(client, big_invoice, luhn_card(300 + n), "10.00", n)
    hold = RiskHold.objects.get()
    analyst = make_user("fiona", is_staff=True)
    analyst.groups.add(Group.objects.get(name=FRAUD_ANALYST))

    admin_client_for(User.objects.get(pk=analyst.pk)).post(
        f"/admin/payments/riskhold/{hold.pk}/change/",
        {"lift_note": "Called the customer: a new company card batch"},
    )

    hold.refresh_from_db()
    assert hold.lifted_at is not None
    assert audit_events("fraud.hold_lifted")
    before = SandboxCharge.objects.count()
    _pay_new_card(client, big_invoice, luhn_card(399), "10.00", 99)
    assert SandboxCharge.objects.count() == before + 1
