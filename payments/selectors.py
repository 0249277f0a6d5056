"""Payments reads and access checks: a customer's payments, and the security page's facts."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Case, CharField, F, QuerySet, Sum, Value, When
from django.http import Http404

from billing.selectors import customer_for_user
from db.compiled import compiled
from payments.models import BankLine, Payment, Refund, RiskDecision
from payments.vault.models import PaymentMethod
from payments.vault.selectors import get_key_status, get_payment_methods_for_customer


def get_payment_for_user(user: Any, pk: Any) -> Payment:
    """One of the user's customer's payments, or 404 (the same answer for any other id)."""
    customer = customer_for_user(user)
    if customer is None:
        raise Http404("No such payment")
    try:
        return Payment.objects.select_related("invoice").get(pk=pk, invoice__customer=customer)
    except (Payment.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such payment") from exc


def get_refund_for_user(user: Any, pk: Any) -> Refund:
    """One of the user's customer's refunds (money given back, or on its way), or 404 (the
    same answer for any other id). Automatic compensations are the platform's own
    bookkeeping, never a refund the customer asked for: 404 too."""
    customer = customer_for_user(user)
    if customer is None:
        raise Http404("No such refund")
    try:
        return Refund.objects.select_related("payment__invoice", "credit_note").get(
            pk=pk, payment__invoice__customer=customer, compensation=False
        )
    except (Refund.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such refund") from exc


def refunds_of(payment: Payment) -> list[Refund]:
    """The refunds of a payment that its customer sees (not automatic compensations)."""
    return list(
        payment.refunds.filter(compensation=False)
        .select_related("credit_note")
        .order_by("created_at", "pk")
    )


def saved_cards_for_user(user: Any) -> QuerySet[PaymentMethod]:
    """The user's customer's active saved cards (none for anyone else)."""
    customer = customer_for_user(user)
    if customer is None:
        return PaymentMethod.objects.none()
    return _saved_cards.build(customer.pk)


@compiled(int)
def _saved_cards(customer_id: int) -> QuerySet[PaymentMethod]:
    return get_payment_methods_for_customer(customer_id).order_by("-created_at", "-pk")


def saved_cards_list(user: Any) -> list[PaymentMethod]:
    """``saved_cards_for_user`` as a list, by a query compiled once (the pay page's)."""
    customer = customer_for_user(user)
    return [] if customer is None else _saved_cards.fetch(customer.pk)


def in_flight_state(invoice_id: Any) -> Any:
    """The state of the oldest payment in flight on one invoice as a one-row ``state``
    query: ``review`` (held for a fraud analyst), ``pending`` or ``unknown``; no row when
    none is in flight. ``invoice_id`` is a value or an expression (a subquery's)."""
    return (
        Payment.objects.filter(invoice_id=invoice_id)
        .holding()
        .order_by("created_at", "pk")
        .annotate(
            state=Case(
                When(
                    risk_decision=RiskDecision.REVIEW,
                    risk_reviewed_at__isnull=True,
                    then=Value("review"),
                ),
                default=F("status"),
                output_field=CharField(),
            )
        )
        .values("state")[:1]
    )


def payment_in_flight(invoice: Any) -> Payment | None:
    """The oldest payment still in flight on the invoice (pending, unknown or held for
    review), or None: while there is one, the invoice takes no other payment."""
    return (
        Payment.objects.filter(invoice_id=invoice.pk).holding().order_by("created_at", "pk").first()
    )


def held_amounts(invoice_ids: Any) -> dict[int, int]:
    """What payments still in flight (pending, unknown) hold against each invoice (one query;
    invoices holding nothing are absent)."""
    rows = (
        Payment.objects.filter(invoice_id__in=invoice_ids)
        .holding()
        .values("invoice_id")
        .annotate(total=Sum("amount"))
        .values_list("invoice_id", "total")
    )
    return {invoice_id: int(total or 0) for invoice_id, total in rows}


def bank_lines_to_review() -> QuerySet[BankLine]:
    """Bank transfer lines that matched no invoice (the operators' review list)."""
    return BankLine.objects.filter(status=BankLine.Status.REVIEW).select_related("bank_file")


@dataclass(frozen=True)
class SecurityFacts:
    """What the "How we protect your payments" page states, read live from configuration."""

    card_cipher: str
    key_wrapping: str
    browser_encryption: str
    entry_key_bits: int
    fingerprint: str
    dek_rotation_hours: int
    active_key_created_at: datetime.datetime | None
    password_hasher: str
    audit_chain: str
    audit_signature: str
    last_checkpoint_at: datetime.datetime | None
    visitor_has_mfa: bool
    session_idle_minutes: int
    lockout_failures: int
    hsts: bool
    signing_certificate_sha256: str = ""
    signing_certificate_subject: str = ""
    pgp_fingerprint: str = ""


def get_security_facts(user: Any) -> SecurityFacts:
    """Live facts for the security page; no key material, nothing about other users."""
    from audit.models import AuditCheckpoint
    from billing.delivery.selectors import published_fingerprints
    from security.selectors import has_second_factor

    status = get_key_status(destroyed_limit=0)
    checkpoint = AuditCheckpoint.objects.order_by("-created_at").only("created_at").first()
    hasher = settings.PASSWORD_HASHERS[0].rsplit(".", 1)[-1].replace("PasswordHasher", "")
    return SecurityFacts(
        card_cipher="AES-256-GCM",
        key_wrapping="AES-256-GCM",
        browser_encryption="RSA-OAEP (SHA-256)",
        entry_key_bits=settings.VAULT_ENTRY_KEY_BITS,
        fingerprint="HMAC-SHA256",
        dek_rotation_hours=settings.VAULT_DEK_ROTATION_HOURS,
        active_key_created_at=status.active.created_at if status.active else None,
        password_hasher=hasher,
        audit_chain="SHA-256",
        audit_signature="Ed25519",
        last_checkpoint_at=checkpoint.created_at if checkpoint else None,
        visitor_has_mfa=has_second_factor(user=user),
        session_idle_minutes=settings.SESSION_COOKIE_AGE // 60,
        lockout_failures=getattr(settings, "AXES_FAILURE_LIMIT", 0),
        hsts=bool(getattr(settings, "SECURE_HSTS_SECONDS", 0)),
        **vars(published_fingerprints()),
    )
