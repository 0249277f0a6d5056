"""The payments app's errors: one hierarchy, each naming the field or rule it concerns."""

from __future__ import annotations


class PaymentsError(Exception):
    """Base of every payments error. ``field`` names the input at fault ('' for none)."""

    field: str = ""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        if field:
            self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidPayment(PaymentsError):
    """A payment request is malformed: amount, currency, card or key (``field`` says which)."""


class InvoiceNotPayable(PaymentsError):
    """The invoice takes no payment (draft, void, a credit note, unknown to this customer)."""

    field = "invoice"


class AlreadyPaid(InvoiceNotPayable):
    """Nothing is left to pay: the invoice is paid, or the rest is held by payments in flight."""


class AmountExceedsDue(InvalidPayment):
    """The amount is more than is left to pay on the invoice."""

    field = "amount"


class IdempotencyKeyReused(InvalidPayment):
    """The idempotency key was already used for a request with other parameters."""

    field = "idempotency_key"


class CardPaymentsUnavailable(PaymentsError):
    """No card can be taken now (the vault's keys fail): nothing was charged. Its message is
    the one calm sentence a customer sees; the cause is in the audit log and the staff
    alert (``payments.vault.services.report_key_fault``)."""


class RefundRefused(PaymentsError):
    """A refund is not possible: no permission, no step-up, nothing left to refund."""


class BankFileError(PaymentsError):
    """A bank file cannot be read; ``field`` names the XML element (and line) at fault."""


class RiskReviewRefused(PaymentsError):
    """A risk review decision is not possible: no permission, no step-up, no reason, or the
    payment is not waiting for one."""


class InvalidRiskSettings(PaymentsError):
    """A risk threshold is out of range or malformed (``field`` names it)."""


class PaymentInProgress(InvoiceNotPayable):
    """A payment on the invoice is still in flight (being confirmed, or under review): no
    second payment until it is settled one way or the other."""


class SavedCardRefused(PaymentsError):
    """Saving or deleting a saved card is not allowed as asked: no second factor to save
    with (``keep_card``), or no fresh one to delete with (``step_up``)."""


class CardPaymentsFrozen(CardPaymentsUnavailable):
    """A security officer froze card payments (an incident's containment): nothing was
    charged. Customers see the same calm sentence as for a key fault."""


class FreezeRefused(PaymentsError):
    """Freezing card payments or lifting the freeze is not possible as asked: no permission,
    no step-up, no reason, or nothing to lift."""


class InvalidPaymentHistory(PaymentsError):
    """A CSV of past payments that does not follow docs/fraud.md (names the line and column)."""


class FraudModelRefused(PaymentsError):
    """A fraud model version refused: no permission, worse than the live one, a stored
    model whose SHA-256 does not match, or too few labelled payments to train on."""


class InvalidFraudLabel(PaymentsError):
    """A fraud label refused: not fraud or good, an unknown source, no permission."""


class InvalidFraudRule(PaymentsError):
    """A fraud rule that does not parse, names an unknown feature or is refused (field)."""


class InvalidListEntry(PaymentsError):
    """A fraud list entry with a value that does not parse for its key (field)."""


class StepUpForPayment(PaymentsError):
    """A fraud rule asks the payer for a fresh second factor before this card is charged."""
