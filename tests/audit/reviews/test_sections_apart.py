"""Outside a transaction, the review's payments section runs on a second connection while
this one computes the others (``compute_sections``): the same figures, and the connection
closed afterwards. Inside one (the caller's atomic block), it runs here and sees the
transaction's rows."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.db import connections

from audit import SYSTEM
from audit.reviews import selectors, services
from billing.models import Invoice
from payments import services as payments
from payments.models import PaymentMethod
from security.models import User
from tests.payments.fixtures import APPROVED, DECLINED, key, sek

Q3 = (dt.date(2026, 7, 1), dt.date(2026, 9, 30))


def _pay_twice(invoice: Invoice, saved_card: Callable[[str], PaymentMethod], alice: User) -> None:
    with time_machine.travel(dt.datetime(2026, 8, 20, 10, tzinfo=dt.UTC), tick=False):
        for n, number in enumerate((APPROVED, DECLINED)):
            payments.pay_invoice(
                invoice,
                amount=sek(100),
                payment_method=saved_card(number),
                idempotency_key=key(n),
                by=alice,
            )


def _sections_and_the_payments_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Any, list[str], list[Any]]:
    ran_in: list[str] = []
    used: list[Any] = []
    original = selectors.payments_and_fraud

    def payments_and_fraud(start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        ran_in.append(threading.current_thread().name)
        try:
            return original(start, end)
        finally:
            used.append(connections["default"])

    monkeypatch.setattr(selectors, "payments_and_fraud", payments_and_fraud)
    with time_machine.travel(dt.datetime(2026, 10, 2, 6, tzinfo=dt.UTC), tick=False):
        sections = services.compute_sections(*Q3, by=SYSTEM, scanners=False)
    return sections, ran_in, used


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_series")  # an earlier transactional test's flush took it
def test_outside_a_transaction_the_payments_run_on_a_connection_of_their_own(
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
    alice: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _pay_twice(thousand_sek_invoice, saved_card, alice)

    sections, ran_in, (used,) = _sections_and_the_payments_thread(monkeypatch)

    assert ran_in != [threading.current_thread().name] and len(ran_in) == 1
    assert used is not connections["default"] and used.connection is None  # closed
    begin, until = services.period_bounds(*Q3)
    assert sections["payments"] == selectors.payments_and_fraud(begin, until)
    assert (sections["payments"]["succeeded"], sections["payments"]["declined"]) == (1, 1)


@pytest.mark.django_db
def test_inside_a_transaction_the_payments_run_here_and_see_its_rows(
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
    alice: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _pay_twice(thousand_sek_invoice, saved_card, alice)

    sections, ran_in, used = _sections_and_the_payments_thread(monkeypatch)

    assert ran_in == [threading.current_thread().name] and used == [connections["default"]]
    assert (sections["payments"]["succeeded"], sections["payments"]["declined"]) == (1, 1)
