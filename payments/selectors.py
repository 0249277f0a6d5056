"""Payments reads and access checks: a customer's payments, and the security page's facts."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Case, CharField, Count, F, Max, Min, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce, TruncDate
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext

from audit.selectors import checkpoint_key_in_use_since
from billing.documents.selectors import signing_certificate_validity
from billing.selectors import CurrencyFigure, CustomerScope, customer_for_user
from db.compiled import compiled
from payments.fraud.models import RiskHold
from payments.models import BankLine, Payment, Refund, RiskDecision
from payments.vault.models import DataKey, EntryKey, PaymentMethod
from payments.vault.selectors import get_key_status, get_payment_methods_for_customer
from security.selectors import oidc_signing_key_in_use


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


def payments_in_scope(scope: CustomerScope) -> QuerySet[Payment]:
    """The payments an API caller sees: its customer's, or every customer's for an
    integration (``billing.selectors.api_scope``)."""
    if scope.every_customer:
        return Payment.objects.all()
    if scope.customer_id is None:
        return Payment.objects.none()
    return Payment.objects.filter(invoice__customer_id=scope.customer_id)


def get_payment_in_scope(scope: CustomerScope, pk: Any) -> Payment:
    """One payment in ``scope`` (its invoice read with it), or 404 for any other id."""
    found = (
        payments_in_scope(scope).select_related("invoice").filter(pk=pk).first()
        if _is_id(pk)
        else None
    )
    if found is None:
        raise Http404("No such payment")
    return found


def saved_cards_in_scope(scope: CustomerScope) -> QuerySet[PaymentMethod]:
    """The active saved cards an API caller sees: its customer's, or every customer's."""
    if scope.every_customer:
        return PaymentMethod.objects.filter(status=PaymentMethod.Status.ACTIVE, saved=True)
    if scope.customer_id is None:
        return PaymentMethod.objects.none()
    return get_payment_methods_for_customer(scope.customer_id)


def get_saved_card_in_scope(scope: CustomerScope, pk: Any) -> PaymentMethod:
    """One active saved card in ``scope``, or 404 for any other id (Bob never sees Alice's)."""
    found = saved_cards_in_scope(scope).filter(pk=pk).first() if _is_id(pk) else None
    if found is None:
        raise Http404("No such payment method")
    return found


def _is_id(value: Any) -> bool:
    return type(value) is int and 0 < value < 2**63


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


# --- the staff dashboards (payments/dashboard.py): a fixed number of queries each --------


def _paid_since(day: datetime.date, moment: datetime.datetime) -> Q:
    """Payments made on ``day`` or later: a bank transfer on the day the bank booked it
    (its camt.054 line), anything else from ``moment`` (the start of ``day``) on."""
    return (
        Q(bank_line__booking_date__gte=day)
        | Q(bank_line__isnull=True, created_at__gte=moment)
        | Q(bank_line__isnull=False, bank_line__booking_date__isnull=True, created_at__gte=moment)
    )


def _day_start(now: datetime.datetime) -> datetime.datetime:
    return timezone.make_aware(
        datetime.datetime.combine(timezone.localdate(now), datetime.time.min)
    )


@dataclass(frozen=True)
class OperatorFigures:
    """What waits for a payments operator: today's money in and out, outcomes still
    unknown, bank lines to resolve, refunds that have not gone through."""

    captured_today: list[CurrencyFigure]
    failed_today: int
    unknown: int
    oldest_unknown: datetime.datetime | None
    bank_lines_to_resolve: int
    refunded_today: list[CurrencyFigure]
    refunds_pending: int
    refunds_failed: int


def operator_figures(*, now: datetime.datetime | None = None) -> OperatorFigures:
    """The operator's dashboard in four queries, whatever the number of payments. A bank
    transfer counts on the day the bank booked it, as on the chart."""
    now = now or timezone.now()
    start = _day_start(now)
    captured = Q(status__in=_CAPTURED)
    failed = Q(status=Payment.Status.FAILED)
    today = (
        Payment.objects.filter(_paid_since(timezone.localdate(now), start))
        .values("currency")
        .annotate(
            captured_count=Count("pk", filter=captured),
            captured_amount=Sum("amount", filter=captured),
            failed_count=Count("pk", filter=failed),
        )
        .order_by("currency")
    )
    captured_today, failed_today = [], 0
    for row in today:
        failed_today += row["failed_count"]
        if row["captured_count"]:
            captured_today.append(
                CurrencyFigure(row["currency"], row["captured_count"], row["captured_amount"])
            )
    unknown = Payment.objects.filter(status=Payment.Status.UNKNOWN).aggregate(
        count=Count("pk"), oldest=Min("created_at")
    )
    refunds = (
        Refund.objects.filter(
            Q(status__in=[Refund.Status.PENDING, Refund.Status.FAILED])
            | Q(status=Refund.Status.SUCCEEDED, created_at__gte=start)
        )
        .values("currency")
        .annotate(
            done_count=Count("pk", filter=Q(status=Refund.Status.SUCCEEDED)),
            done_amount=Sum("amount", filter=Q(status=Refund.Status.SUCCEEDED)),
            pending=Count("pk", filter=Q(status=Refund.Status.PENDING)),
            failed=Count("pk", filter=Q(status=Refund.Status.FAILED)),
        )
        .order_by("currency")
    )
    refunded_today, pending, failed_refunds = [], 0, 0
    for refund_row in refunds:
        refund: dict[str, Any] = dict(refund_row)
        pending += refund["pending"]
        failed_refunds += refund["failed"]
        if refund["done_count"]:
            refunded_today.append(
                CurrencyFigure(refund["currency"], refund["done_count"], refund["done_amount"])
            )
    return OperatorFigures(
        captured_today=captured_today,
        failed_today=failed_today,
        unknown=unknown["count"],
        oldest_unknown=unknown["oldest"],
        bank_lines_to_resolve=BankLine.objects.filter(status=BankLine.Status.REVIEW).count(),
        refunded_today=refunded_today,
        refunds_pending=pending,
        refunds_failed=failed_refunds,
    )


_CAPTURED = [
    Payment.Status.SUCCEEDED,
    Payment.Status.PARTIALLY_REFUNDED,
    Payment.Status.REFUNDED,
]


def payments_per_day(
    *, days: int = 30, now: datetime.datetime | None = None
) -> dict[datetime.date, tuple[int, int]]:
    """Per local day of the last ``days`` (today included): (payments that went through,
    payments that failed), in one query; days without any are absent. A bank transfer
    counts on its booking date."""
    now = now or timezone.now()
    first = timezone.localdate(now) - datetime.timedelta(days=days - 1)
    since = timezone.make_aware(datetime.datetime.combine(first, datetime.time.min))
    # A bank transfer counts on the day the bank booked it (its camt.054 line), a card
    # payment on the day it was made.
    rows = (
        Payment.objects.filter(_paid_since(first, since))
        .annotate(
            day=Coalesce(
                "bank_line__booking_date",
                TruncDate("created_at", tzinfo=timezone.get_current_timezone()),
            )
        )
        .values("day")
        .annotate(
            ok=Count("pk", filter=Q(status__in=_CAPTURED)),
            failed=Count("pk", filter=Q(status=Payment.Status.FAILED)),
        )
        .values_list("day", "ok", "failed")
    )
    return {day: (ok, failed) for day, ok, failed in rows}


@dataclass(frozen=True)
class ReviewQueueFigures:
    """The fraud analyst's queue: payments held for review by age, and active holds."""

    waiting: int
    oldest: datetime.datetime | None
    under_an_hour: int
    under_a_day: int
    older: int
    amounts: list[CurrencyFigure]
    active_holds: int


def review_queue_figures(*, now: datetime.datetime | None = None) -> ReviewQueueFigures:
    """Payments awaiting a risk decision, counted by age and summed per currency, and the
    customers or addresses on hold: two queries."""
    now = now or timezone.now()
    hour, day = now - datetime.timedelta(hours=1), now - datetime.timedelta(days=1)
    queue = (
        Payment.objects.awaiting_risk_review()
        .values("currency")
        .annotate(
            count=Count("pk"),
            amount=Sum("amount"),
            oldest=Min("created_at"),
            hour=Count("pk", filter=Q(created_at__gte=hour)),
            day=Count("pk", filter=Q(created_at__lt=hour, created_at__gte=day)),
            older=Count("pk", filter=Q(created_at__lt=day)),
        )
        .order_by("currency")
    )
    rows: list[dict[str, Any]] = [dict(row) for row in queue]
    oldest = min((row["oldest"] for row in rows), default=None)
    return ReviewQueueFigures(
        waiting=sum(row["count"] for row in rows),
        oldest=oldest,
        under_an_hour=sum(row["hour"] for row in rows),
        under_a_day=sum(row["day"] for row in rows),
        older=sum(row["older"] for row in rows),
        amounts=[CurrencyFigure(row["currency"], row["count"], row["amount"]) for row in rows],
        active_holds=RiskHold.objects.filter(lifted_at__isnull=True).count(),
    )


@dataclass(frozen=True)
class KeyAge:
    """One kind of vault key: the age of its oldest key in that state, and how long a key
    may stay there (its cryptoperiod)."""

    name: str
    created_at: datetime.datetime | None
    age: datetime.timedelta | None
    cryptoperiod: datetime.timedelta
    overdue: bool


def vault_key_ages(*, now: datetime.datetime | None = None) -> list[KeyAge]:
    """The active data key and card-entry key against their rotation periods, and the
    oldest decrypt-only data key (re-encrypted and destroyed within a rotation), the audit
    checkpoint signing key (``audit.selectors.checkpoint_key_in_use_since``), the
    document signing certificate (``billing.documents.selectors
    .signing_certificate_validity``, its validity as its cryptoperiod) and the OpenID
    Connect ID-token signing key (``security.selectors.oidc_signing_key_in_use``): 3
    queries."""
    now = now or timezone.now()
    dek_period = datetime.timedelta(hours=settings.VAULT_DEK_ROTATION_HOURS)
    entry_period = datetime.timedelta(hours=settings.VAULT_ENTRY_KEY_ROTATION_HOURS)
    deks = DataKey.objects.aggregate(
        active=Max("created_at", filter=Q(state=DataKey.State.ACTIVE)),
        retiring=Min("retired_at", filter=Q(state=DataKey.State.DECRYPT_ONLY)),
    )
    entry = EntryKey.objects.filter(state=EntryKey.State.ACTIVE).aggregate(active=Max("created_at"))

    def age(name: str, since: datetime.datetime | None, period: datetime.timedelta) -> KeyAge:
        elapsed = now - since if since else None
        return KeyAge(name, since, elapsed, period, elapsed is not None and elapsed > period)

    _key_id, checkpoint_since = checkpoint_key_in_use_since()
    certificate = signing_certificate_validity()
    if certificate is not None:
        _fingerprint, certificate_since, certificate_until = certificate
        certificate_period = certificate_until - certificate_since
    else:
        certificate_since, certificate_period = None, datetime.timedelta(0)
    return [
        age(gettext("Active data key (DEK)"), deks["active"], dek_period),
        age(gettext("Card-entry key"), entry["active"], entry_period),
        age(gettext("Oldest decrypt-only data key, since retired"), deks["retiring"], dek_period),
        age(
            gettext("Audit checkpoint signing key"),
            checkpoint_since,
            datetime.timedelta(days=settings.GOVERNANCE_AUDIT_KEY_CRYPTOPERIOD_DAYS),
        ),
        age(gettext("Document signing certificate"), certificate_since, certificate_period),
        age(
            gettext("OpenID Connect ID-token signing key"),
            oidc_signing_key_in_use()[1],
            datetime.timedelta(days=settings.OIDC_KEY_CRYPTOPERIOD_DAYS),
        ),
    ]
