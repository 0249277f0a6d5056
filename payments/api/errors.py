"""How the API answers payments' errors (``security.api.errors``: one shape, the error's own
message and field): bad input 400; an invoice that takes no payment now 409; the same
payment Idempotency-Key with other parameters 422; card payments unavailable (the vault's
keys fail, or an incident froze them) 503."""

from __future__ import annotations

from payments.exceptions import (
    AlreadyPaid,
    CardPaymentsFrozen,
    CardPaymentsUnavailable,
    IdempotencyKeyReused,
    InvoiceNotPayable,
    PaymentInProgress,
    PaymentsError,
)
from payments.vault.exceptions import InvalidCard
from security.api.errors import register_domain_error


def register_payments_errors() -> None:
    """Register payments' error hierarchy with the API's handler (idempotent)."""
    register_domain_error(PaymentsError, status_code=400, code="invalid")
    register_domain_error(InvalidCard, status_code=400, code="invalid_card")
    register_domain_error(InvoiceNotPayable, status_code=409, code="not_payable")
    register_domain_error(AlreadyPaid, status_code=409, code="already_paid")
    register_domain_error(PaymentInProgress, status_code=409, code="payment_in_progress")
    register_domain_error(IdempotencyKeyReused, status_code=422, code="idempotency_key_reused")
    register_domain_error(
        CardPaymentsUnavailable, status_code=503, code="card_payments_unavailable"
    )
    register_domain_error(CardPaymentsFrozen, status_code=503, code="card_payments_frozen")
