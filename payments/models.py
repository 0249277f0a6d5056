"""Payments tables: payments, refunds, idempotency keys and bank files.

The vault's tables live in ``payments.vault.models`` and the sandbox acquirer's
own ledger in ``payments.gateways.models``; both are re-exported here so that
Django finds them. State changes go through ``payments.services`` (cards and
refunds) and ``payments.reconciliation`` (bank files); reads through
``payments.selectors``. Amounts are integers in the currency's minor unit.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from billing.money import Money
from payments.fraud.models import (
    FraudLabel,
    FraudListEntry,
    FraudModelVersion,
    FraudRule,
    FraudRuleVersion,
    RiskDecision,
    RiskEvaluation,
    RiskHold,
    RiskSettings,
)
from payments.freeze_models import CardPaymentFreeze
from payments.gateways.models import SandboxCharge
from payments.vault.models import (
    CardSecret,
    DataKey,
    EntryKey,
    PaymentMethod,
    RevealWindow,
    UsedEntryNonce,
)


class PaymentQuerySet(models.QuerySet["Payment"]):
    def holding(self) -> PaymentQuerySet:
        """Payments whose amount is reserved against the invoice: not settled either way yet."""
        return self.filter(status__in=[Payment.Status.PENDING, Payment.Status.UNKNOWN])

    def awaiting_risk_review(self) -> PaymentQuerySet:
        """Card payments held by the risk engine until a fraud analyst approves or declines."""
        return self.filter(
            status=Payment.Status.PENDING,
            risk_decision=RiskDecision.REVIEW,
            risk_reviewed_at__isnull=True,
        )

    def captured(self) -> PaymentQuerySet:
        """Payments whose money arrived (some of it may have been refunded since)."""
        return self.filter(
            status__in=[
                Payment.Status.SUCCEEDED,
                Payment.Status.PARTIALLY_REFUNDED,
                Payment.Status.REFUNDED,
            ]
        )


class Payment(models.Model):
    """One attempt to pay an invoice (card) or one bank transfer credited to it.

    A card payment is PENDING from the moment its amount is reserved against the
    invoice (under the invoice's row lock) until the gateway answers; UNKNOWN when
    the answer was lost (reconciled by status lookup, never guessed).
    ``idempotency_key`` is the key sent to the acquirer: a retry of the same
    payment reuses it, so the acquirer never charges twice.
    """

    class Method(models.TextChoices):
        CARD = "card", "Card (vault token)"
        BANK_TRANSFER = "bank_transfer", "Bank transfer"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        REFUNDED = "refunded", "Refunded"
        PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
        UNKNOWN = "unknown", "Unknown (being reconciled)"

    # Indexed by payments_payment_invoice_idx (invoice, status), not by a second index.
    invoice = models.ForeignKey(
        "billing.Invoice", on_delete=models.PROTECT, related_name="payments", db_index=False
    )
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    method = models.CharField(max_length=16, choices=Method.choices)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, editable=False
    )
    payment_method = models.ForeignKey(
        PaymentMethod,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payments",
        help_text="The saved card charged (card payments).",
    )
    card_brand = models.CharField(max_length=12, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    gateway = models.CharField(max_length=40, blank=True)
    gateway_reference = models.CharField(max_length=100, blank=True)
    # Unique by payments_payment_key_uniq (a constraint: no unused LIKE index twin).
    idempotency_key = models.CharField(max_length=100, editable=False)
    # The risk engine's decision (payments/fraud/) for card payments; null for bank
    # transfers. Null (not "") on purpose: "not scored" must differ from any decision.
    risk_decision = models.CharField(  # noqa: DJ001
        max_length=10, choices=RiskDecision.choices, null=True, blank=True, editable=False
    )
    risk_reasons = models.JSONField(
        default=list, blank=True, editable=False, help_text="The rules that decided, and why."
    )
    # A payment held for review: the fraud analyst's decision (approve or decline).
    risk_reviewed_at = models.DateTimeField(null=True, blank=True, editable=False)
    risk_reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    risk_review_note = models.CharField(max_length=500, blank=True, editable=False)
    forget_card = models.BooleanField(
        default=False,
        editable=False,
        help_text="A new card the payer chose not to keep: erased once the payment is final.",
    )
    failure_code = models.CharField(max_length=40, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    refunded_amount = models.BigIntegerField(default=0, editable=False)
    bank_line = models.OneToOneField(
        "payments.BankLine",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payment",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # The payer's network address (security.net.client_address), for the card-testing
    # rule per address; "" when there was no request.
    client_ip = models.CharField(max_length=45, blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    objects = PaymentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["invoice", "status"], name="payments_payment_invoice_idx"),
            models.Index(fields=["status", "created_at"], name="payments_payment_status_idx"),
            # The risk engine counts recent failures per card fingerprint and per customer
            # on every attempt: both reach payments through their payment methods.
            models.Index(
                fields=["payment_method", "created_at"],
                condition=Q(status="failed"),
                name="payments_payment_failed_idx",
            ),
            # And whether the card was paid with before (the new-card rule): the first
            # captured payment of one of its tokens, found in the index. Without it the
            # planner scanned the payments table for every new card.
            models.Index(
                fields=["payment_method"],
                condition=Q(status__in=["succeeded", "partially_refunded", "refunded"]),
                name="payments_payment_captured_idx",
            ),
            # The fraud features count every attempt per card and per customer in windows up
            # to 30 days (payments.fraud.features.online): both reach payments through
            # their payment methods.
            models.Index(
                fields=["payment_method", "created_at"], name="payments_payment_pm_time_idx"
            ),
            # The card-testing rule counts the cards paid with from one address lately.
            models.Index(
                fields=["client_ip", "created_at"],
                condition=~Q(client_ip=""),
                name="payments_payment_ip_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="payments_payment_key_uniq"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_payment_positive"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=F("amount")),
                name="payments_payment_refund_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(method="bank_transfer") | Q(payment_method__isnull=False),
                name="payments_payment_card_has_method",
            ),
        ]
        permissions = [
            ("refund_payment", "Can refund a payment (with step-up MFA)"),
            ("decide_risk", "Can approve or decline a payment held for risk review"),
        ]

    def __str__(self) -> str:
        return f"Payment #{self.pk} {self.money} ({self.get_status_display().lower()})"

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def refundable(self) -> int:
        """What can still be refunded, in minor units."""
        if self.status not in (self.Status.SUCCEEDED, self.Status.PARTIALLY_REFUNDED):
            return 0
        return self.amount - self.refunded_amount

    @property
    def is_final(self) -> bool:
        return self.status not in (self.Status.PENDING, self.Status.UNKNOWN)

    @property
    def awaiting_risk_review(self) -> bool:
        """Held by the risk engine, not charged, until a fraud analyst decides."""
        return (
            self.status == self.Status.PENDING
            and self.risk_decision == RiskDecision.REVIEW
            and self.risk_reviewed_at is None
        )


class Refund(models.Model):
    """Money given back on a captured payment: never more than is left of it.

    ``purpose`` is what the operator said the refund is for, and decides what becomes of
    the invoice (billing services): a credit note (the invoice stays settled) or a reopened
    invoice (the amount is owed again). Only an automatic compensation has none.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Purpose(models.TextChoices):
        CREDIT_NOTE = (
            "credit_note",
            "With a credit note (goods returned or price reduced): the invoice stays settled",
        )
        REOPEN = (
            "reopen",
            "Reopen the invoice (the payment was reversed): the amount is owed again",
        )

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, editable=False
    )
    reason = models.CharField(max_length=500)
    gateway_reference = models.CharField(max_length=100, blank=True)
    idempotency_key = models.CharField(max_length=100, unique=True, editable=False)
    failure_message = models.CharField(max_length=300, blank=True)
    compensation = models.BooleanField(
        default=False,
        editable=False,
        help_text="Automatic: a capture the invoice could not take, given back at once.",
    )
    purpose = models.CharField(max_length=12, choices=Purpose.choices, blank=True, editable=False)
    credit_note = models.ForeignKey(
        "billing.Invoice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="credit_note_refunds",
        help_text="The credit note issued for this refund (purpose: credit note).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_refund_positive"),
            # Never silently reopened: every refund an operator asks for says what it is for.
            models.CheckConstraint(
                condition=Q(compensation=True) | Q(purpose__in=["credit_note", "reopen"]),
                name="payments_refund_has_purpose",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"Refund #{self.pk} {Money(self.amount, self.currency)}"
            f" ({self.get_status_display().lower()})"
        )


class IdempotencyKey(models.Model):
    """A client's Idempotency-Key: the request it came with and the payment it made.

    ``scope`` separates clients (one customer's keys never collide with another's);
    ``request_hash`` is SHA-256 over the request's parameters. Kept at least
    PAYMENTS_IDEMPOTENCY_HOURS (24 h), then purged by a scheduled job.
    """

    scope = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="idempotency_keys")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="payments_idempotency_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key[:12]}…"


class BankFile(models.Model):
    """An imported ISO 20022 camt.054 file; ``sha256`` makes re-importing it a no-op."""

    sha256 = models.CharField(max_length=64, unique=True)
    filename = models.CharField(max_length=255)
    message_id = models.CharField(max_length=100, blank=True)
    imported_at = models.DateTimeField(auto_now_add=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    lines_total = models.PositiveIntegerField(default=0)
    lines_matched = models.PositiveIntegerField(default=0)
    lines_reversed = models.PositiveIntegerField(
        default=0, help_text="Reversals that took back an earlier bank payment."
    )
    lines_review = models.PositiveIntegerField(default=0)
    lines_info = models.PositiveIntegerField(
        default=0, help_text="Listed for information: entries not booked yet, and money out."
    )
    lines_skipped = models.PositiveIntegerField(
        default=0, help_text="Lines already imported from another file."
    )
    completed_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty while an import is running or was interrupted."
    )

    class Meta:
        ordering = ["-imported_at", "-pk"]
        verbose_name = "bank file"

    def __str__(self) -> str:
        # In the installation's time zone, as every other time of the admin.
        return f"{self.filename} ({timezone.localtime(self.imported_at):%Y-%m-%d %H:%M})"


class BankLine(models.Model):
    """One transaction of a bank file: a credit matched to an invoice, a reversal matched to
    the payment it takes back, a line listed for information, or one waiting in the review
    list."""

    class Kind(models.TextChoices):
        CREDIT = "credit", "Credit (money in)"
        DEBIT = "debit", "Debit (money out)"
        REVERSAL = "reversal", "Reversal of a credit (money taken back)"
        DEBIT_REVERSAL = "debit_reversal", "Reversal of a debit (money back)"

    class Status(models.TextChoices):
        MATCHED = "matched", "Matched"
        REVIEW = "review", "Needs review"
        RESOLVED = "resolved", "Resolved by an operator"
        INFO = "info", "For information"

    class Reason(models.TextChoices):
        NONE = "", "—"
        UNKNOWN_REFERENCE = "unknown_reference", "Unknown OCR reference"
        NO_REFERENCE = "no_reference", "No structured reference"
        AMOUNT_MISMATCH = "amount_mismatch", "Amount differs from the amount due"
        CURRENCY_MISMATCH = "currency_mismatch", "Currency differs from the invoice"
        INVOICE_CLOSED = "invoice_closed", "Invoice is not open"
        INVALID = "invalid", "Malformed line"
        BATCH_MISMATCH = "batch_mismatch", "Entry or batch does not add up"
        UNKNOWN_STATUS = "unknown_status", "Entry status unknown"
        REVERSAL_UNMATCHED = "reversal_unmatched", "Reversal: no single payment matches"
        DEBIT_REVERSAL = "debit_reversal", "Reverses an earlier debit"

    bank_file = models.ForeignKey(BankFile, on_delete=models.PROTECT, related_name="lines")
    line_key = models.CharField(
        max_length=200,
        unique=True,
        help_text="The line's identity: the bank's own reference, else the file's and positions.",
    )
    position = models.PositiveIntegerField()
    kind = models.CharField(
        max_length=16, choices=Kind.choices, default=Kind.CREDIT, editable=False
    )
    entry_status = models.CharField(
        max_length=35, default="BOOK", editable=False, help_text="Ntry/Sts: BOOK, PDNG, INFO…"
    )
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=40, blank=True)
    debtor_name = models.CharField(max_length=140, blank=True)
    booking_date = models.DateField(null=True, blank=True)
    bank_reference = models.CharField(
        max_length=35, blank=True, help_text="AcctSvcrRef of the transaction or its entry."
    )
    transaction_id = models.CharField(max_length=35, blank=True, help_text="Refs/TxId.")
    end_to_end_id = models.CharField(max_length=35, blank=True, help_text="Refs/EndToEndId.")
    status = models.CharField(max_length=10, choices=Status.choices, editable=False)
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True, editable=False)
    detail = models.CharField(max_length=300, blank=True)
    invoice = models.ForeignKey(
        "billing.Invoice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="bank_lines",
    )
    reverses = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversed_by",
        help_text="The credit line whose payment this reversal took back.",
    )

    class Meta:
        ordering = ["bank_file", "position"]
        verbose_name = "bank transfer line"
        indexes = [
            models.Index(fields=["status"], name="payments_bankline_status_idx"),
            # A reversal looks for the credit it takes back by the bank's transaction id,
            # among the lines that paid something (docs/payments.md, "Reversals"); the
            # review lines, most of a large file, stay out of this index.
            models.Index(
                fields=["transaction_id"],
                condition=Q(kind="credit", status__in=["matched", "resolved"])
                & ~Q(transaction_id=""),
                name="payments_bankline_txid_idx",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{Money(self.amount, self.currency)} ref {self.reference or '—'}"
            f" ({self.get_status_display().lower()})"
        )


__all__ = [
    "BankFile",
    "BankLine",
    "CardPaymentFreeze",
    "CardSecret",
    "DataKey",
    "EntryKey",
    "FraudLabel",
    "FraudListEntry",
    "FraudModelVersion",
    "FraudRule",
    "FraudRuleVersion",
    "IdempotencyKey",
    "Payment",
    "PaymentMethod",
    "Refund",
    "RevealWindow",
    "RiskDecision",
    "RiskEvaluation",
    "RiskHold",
    "RiskSettings",
    "SandboxCharge",
    "UsedEntryNonce",
]
