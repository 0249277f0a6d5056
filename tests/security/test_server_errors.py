"""Issue 17, item 11: input that ended in a server error (500) gets a clear answer instead.

(The camt.054 amount is payments/reconciliation's, tested there.)
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from billing.exceptions import InvalidInput
from billing.models import Invoice
from billing.money import Money, to_minor_units
from payments.models import Payment, PaymentMethod
from tests.payments.conftest import vault_keyring  # noqa: F401 - a keyring per test
from tests.payments.fixtures import APPROVED, alice_client, saved_card, thousand_sek_invoice  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("amount", ["1e999999999", "-1e999999999", "1e-999999999", "9" * 400])
def test_an_absurd_amount_is_refused_naming_the_field(amount: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Money.from_decimal(Decimal(amount), "SEK")
    assert caught.value.field == "amount"


def test_ordinary_amounts_still_convert() -> None:
    assert to_minor_units(Decimal("1000.50"), "SEK") == 100_050
    assert to_minor_units(Decimal("0.01"), "SEK") == 1
    assert to_minor_units(Decimal("1e3"), "JPY") == 1000


@pytest.mark.parametrize("amount", ["1e999999999", "1E+999999999", "-1e999999999"])
def test_paying_an_overflowing_amount_is_a_form_error_not_a_server_error(
    alice_client: Client,  # noqa: F811
    thousand_sek_invoice: Invoice,  # noqa: F811
    saved_card: Callable[[str], PaymentMethod],  # noqa: F811
    amount: str,
) -> None:
    card = saved_card(APPROVED)

    response = alice_client.post(
        reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]),
        {"amount": amount, "payment_method": card.pk, "idempotency_key": "o" * 32},
    )

    assert response.status_code == 400
    assert "SEK" in response.content.decode()  # "Enter an amount in SEK."
    assert not Payment.objects.exists()
