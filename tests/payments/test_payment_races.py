"""No overpayment under races: 20 concurrent full payments of one invoice capture once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from billing.models import Invoice
from payments import services
from payments.exceptions import AlreadyPaid, PaymentInProgress
from payments.gateways.models import SandboxCharge
from payments.models import Payment, PaymentMethod
from security.models import User
from tests.factories import audit_events, ensure_default_series
from tests.payments.fixtures import APPROVED, key, sek

ATTEMPTS = 20


@pytest.fixture
def series() -> None:
    ensure_default_series()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_full_payments_capture_exactly_once(
    series: None,
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
    alice: User,
) -> None:
    card = saved_card(APPROVED)
    services.get_gateway_account()  # created once, not raced by the threads
    start = threading.Barrier(ATTEMPTS)

    def attempt(n: int) -> str:
        try:
            start.wait()
            payment = services.pay_invoice(
                thousand_sek_invoice,
                amount=sek(1000),
                payment_method=card,
                idempotency_key=key(n),
                by=alice,
            )
            return payment.status
        except (AlreadyPaid, PaymentInProgress) as exc:
            # Refused under the invoice's lock: paid, or the winner's payment still in flight.
            assert "already paid" in exc.message or "being confirmed" in exc.message
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=ATTEMPTS) as pool:
        outcomes = list(pool.map(attempt, range(ATTEMPTS)))

    assert sorted(outcomes).count("succeeded") == 1
    assert outcomes.count("refused") == ATTEMPTS - 1
    thousand_sek_invoice.refresh_from_db()
    assert (thousand_sek_invoice.status, thousand_sek_invoice.amount_paid) == ("paid", 100_000)
    # Every charge at the acquirer is either the one captured payment or given back.
    captured = SandboxCharge.objects.filter(outcome="captured")
    uncompensated = [c for c in captured if c.refunded_amount < c.amount]
    assert len(uncompensated) == 1
    assert Payment.objects.get(gateway_reference=uncompensated[0].reference).status == "succeeded"
    assert len(audit_events("payment.succeeded")) == 1
