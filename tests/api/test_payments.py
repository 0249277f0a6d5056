"""The payments API: pay with a saved card (``payments.services.pay_invoice``), list, read,
refund (``refund_payment``: the operator's permission and step-up, as in the admin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from billing.models import Customer, Invoice
from payments import services
from payments.models import Payment, PaymentMethod, Refund
from security.models import User
from tests.api.conftest import ALL_SCOPES, Api, error_fields
from tests.factories import audit_events, make_user, with_role
from tests.payments.fixtures import APPROVED, DECLINED, key, sek

pytestmark = pytest.mark.django_db

Cards = Callable[[str], PaymentMethod]


def pay_body(invoice: Invoice, card: PaymentMethod, amount: int = 100_000) -> dict[str, Any]:
    return {"invoice": invoice.pk, "amount": amount, "currency": "SEK", "payment_method": card.pk}


def test_alice_pays_her_invoice_with_her_saved_card(
    alice_api: Api, thousand_sek_invoice: Invoice, saved_card: Cards
) -> None:
    response = alice_api.post("payments", pay_body(thousand_sek_invoice, saved_card(APPROVED)))

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["amount"] == 100_000 and body["currency"] == "SEK"
    assert body["card_last4"] == "4242"
    thousand_sek_invoice.refresh_from_db()
    assert thousand_sek_invoice.status == Invoice.Status.PAID
    payment = Payment.objects.get(pk=body["id"])
    assert audit_events("payment.succeeded", payment)


def test_a_declined_card_is_a_failed_payment_and_the_invoice_stays_open(
    alice_api: Api, thousand_sek_invoice: Invoice, saved_card: Cards
) -> None:
    response = alice_api.post("payments", pay_body(thousand_sek_invoice, saved_card(DECLINED)))

    assert response.status_code == 201
    assert response.json()["status"] == "failed"
    thousand_sek_invoice.refresh_from_db()
    assert thousand_sek_invoice.status == Invoice.Status.OPEN


def test_a_retry_with_the_same_key_replays_the_first_payment(
    alice_api: Api, thousand_sek_invoice: Invoice, saved_card: Cards
) -> None:
    body = pay_body(thousand_sek_invoice, saved_card(APPROVED))

    first = alice_api.post("payments", body, key="retry-key-0001")
    second = alice_api.post("payments", body, key="retry-key-0001")

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert Payment.objects.filter(invoice=thousand_sek_invoice).count() == 1


def test_the_same_key_with_another_amount_is_refused(
    alice_api: Api, thousand_sek_invoice: Invoice, saved_card: Cards
) -> None:
    card = saved_card(APPROVED)
    alice_api.post("payments", pay_body(thousand_sek_invoice, card, 50_000), key="key-mismatch")

    again = alice_api.post(
        "payments", pay_body(thousand_sek_invoice, card, 40_000), key="key-mismatch"
    )

    assert again.status_code in (409, 422)
    assert Payment.objects.filter(invoice=thousand_sek_invoice).count() == 1


def test_alice_cannot_pay_bobs_invoice_nor_with_bobs_card(
    alice_api: Api,
    bob: User,
    bob_company: Customer,
    thousand_sek_invoice: Invoice,
    make_open_invoice: Callable[..., Invoice],
    saved_card: Cards,
) -> None:
    bobs_invoice = make_open_invoice(bob_company)
    from payments.vault.cards import Card
    from payments.vault.services import tokenize

    bobs_card = tokenize(
        Card.from_input(number=APPROVED, expiry="12/39", cvc="123"), customer=bob_company, by=bob
    )

    on_bobs_invoice = alice_api.post("payments", pay_body(bobs_invoice, saved_card(APPROVED)))
    with_bobs_card = alice_api.post("payments", pay_body(thousand_sek_invoice, bobs_card))

    assert on_bobs_invoice.status_code == 400 and "invoice" in error_fields(on_bobs_invoice)
    assert with_bobs_card.status_code == 400
    assert "payment_method" in error_fields(with_bobs_card)
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "1000.00"}, "amount"),
        ({"amount": 1000.5}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": 200_000}, "amount"),
        ({"currency": "EUR"}, "currency"),
        ({"currency": "ZZZ"}, "currency"),
        ({"payment_method": "tok_123"}, "payment_method"),
        ({"tip": 100}, "tip"),
    ],
)
def test_bad_payment_input_names_the_field_and_charges_nothing(
    alice_api: Api,
    thousand_sek_invoice: Invoice,
    saved_card: Cards,
    change: dict[str, Any],
    field: str,
) -> None:
    body = {**pay_body(thousand_sek_invoice, saved_card(APPROVED)), **change}

    response = alice_api.post("payments", body)

    assert response.status_code == 400, response.json()
    assert field in error_fields(response)
    assert not Payment.objects.exists()


def test_paying_needs_payments_write(
    api_as: Callable[..., Api], alice: User, thousand_sek_invoice: Invoice, saved_card: Cards
) -> None:
    reader = api_as(alice, [s for s in ALL_SCOPES if s != "payments:write"])

    response = reader.post("payments", pay_body(thousand_sek_invoice, saved_card(APPROVED)))

    assert response.status_code == 403
    assert not Payment.objects.exists()


def paid(invoice: Invoice, card: PaymentMethod, by: User) -> Payment:
    return services.pay_invoice(
        invoice, amount=sek(1000), payment_method=card, idempotency_key=key("paid"), by=by
    )


def test_lists_and_reads_show_only_the_callers_payments(
    alice_api: Api,
    bob_api: Api,
    erp_api: Api,
    alice: User,
    thousand_sek_invoice: Invoice,
    saved_card: Cards,
) -> None:
    payment = paid(thousand_sek_invoice, saved_card(APPROVED), alice)

    assert [p["id"] for p in alice_api.get("payments").json()["results"]] == [payment.pk]
    assert alice_api.get(f"payments/{payment.pk}").json()["id"] == payment.pk
    assert bob_api.get("payments").json()["results"] == []
    assert bob_api.get(f"payments/{payment.pk}").status_code == 404
    assert erp_api.get("payments", invoice=thousand_sek_invoice.pk).json()["results"]


def test_bob_cannot_refund_alices_payment(
    bob_api: Api, alice: User, thousand_sek_invoice: Invoice, saved_card: Cards
) -> None:
    payment = paid(thousand_sek_invoice, saved_card(APPROVED), alice)
    body = {"amount": 10_000, "currency": "SEK", "reason": "x", "purpose": "reopen"}

    assert bob_api.post(f"payments/{payment.pk}/refunds", body).status_code == 404
    assert not Refund.objects.exists()


@pytest.mark.parametrize("who", ["alice", "integration", "operator"])
def test_a_refund_needs_the_operators_permission_and_a_fresh_second_factor(
    api_as: Callable[..., Api],
    alice: User,
    thousand_sek_invoice: Invoice,
    saved_card: Cards,
    who: str,
) -> None:
    """The same rule as in the admin (``refund_payment``): Alice may not refund, nor an
    integration (no person); an operator's token carries no fresh second factor, so the
    step-up refuses it."""
    payment = paid(thousand_sek_invoice, saved_card(APPROVED), alice)
    caller = {
        "alice": lambda: api_as(alice),
        "integration": lambda: api_as(None),
        "operator": lambda: api_as(
            with_role(make_user("olle", is_staff=True), "Payments operator")
        ),
    }[who]()
    body = {"amount": 10_000, "currency": "SEK", "reason": "returned", "purpose": "reopen"}

    response = caller.post(f"payments/{payment.pk}/refunds", body)

    assert response.status_code in (403, 404)
    assert not Refund.objects.exists()
    payment.refresh_from_db()
    assert payment.refunded_amount == 0
