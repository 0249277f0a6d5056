"""Every list endpoint answers in a constant number of queries as the data grows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Customer, Invoice
from payments import services
from payments.models import PaymentMethod
from security.models import User
from tests.api.conftest import Api
from tests.factories import line, make_customer
from tests.payments.fixtures import APPROVED, key, sek

pytestmark = pytest.mark.django_db


def grow(
    n: int,
    alice: User,
    alice_company: Customer,
    make_open_invoice: Callable[..., Invoice],
    saved_card: Callable[[str], PaymentMethod],
) -> None:
    """``n`` more of everything a list shows: customers, invoices, payments, cards."""
    for i in range(n):
        make_customer(f"Grown {i} AB")
        invoice = make_open_invoice(alice_company, [line("Licence", "1", "800.00")])
        services.pay_invoice(
            invoice,
            amount=sek(1000),
            payment_method=saved_card(APPROVED),
            idempotency_key=key(f"grow-{invoice.pk}"),
            by=alice,
        )


@pytest.mark.parametrize(
    "path", ["customers", "invoices", "payments", "payment-methods", "invoices?status=paid"]
)
@pytest.mark.parametrize("who", ["alice", "integration"])
def test_a_list_takes_the_same_queries_for_2_and_for_7_rows(
    alice_api: Api,
    erp_api: Api,
    alice: User,
    alice_company: Customer,
    make_open_invoice: Callable[..., Invoice],
    saved_card: Callable[[str], PaymentMethod],
    django_assert_num_queries: Any,
    path: str,
    who: str,
) -> None:
    api = alice_api if who == "alice" else erp_api
    grow(2, alice, alice_company, make_open_invoice, saved_card)
    with CaptureQueriesContext(connection) as small:
        assert api.get(path).status_code == 200

    grow(5, alice, alice_company, make_open_invoice, saved_card)
    with django_assert_num_queries(len(small)):
        response = api.get(path)

    assert response.status_code == 200
    assert len(response.json()["results"]) >= (7 if path != "customers" or who != "alice" else 1)
