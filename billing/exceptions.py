"""Billing errors: one hierarchy under BillingError, each naming its field or rule.

Services raise these before anything is written (or inside the transaction that
rolls back), so bad input changes nothing. ``field`` is the model field or form
field the error concerns, or the name of the rule that was broken; the API and
admin map it once to a response or to the form field.
"""

from __future__ import annotations


class BillingError(Exception):
    """Base of every billing error; ``field`` names the field or rule concerned."""

    field: str = "__all__"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidInput(BillingError):
    """A value is malformed or outside what the field allows."""


class UnknownCurrency(InvalidInput):
    """A currency code that is not an ISO 4217 currency."""

    field = "currency"


class InvalidVatRate(InvalidInput):
    """A VAT category/rate pair that the rules or the configured rates refuse."""

    field = "vat_rate"


class InvalidQuantity(InvalidInput):
    """A line quantity that is zero, negative or not a number."""

    field = "quantity"


class InvalidIdentityNumber(InvalidInput):
    """An organisation/personal number or VAT id that fails its checksum or format."""

    field = "identity_number"


class InvalidStatusTransition(BillingError):
    """The invoice's status does not allow this action."""

    field = "status"


class InvoiceNotDraft(InvalidStatusTransition):
    """The invoice is finalized: its content can never change (issue a credit note)."""


class EmptyInvoice(BillingError):
    """An invoice without lines cannot be finalized."""

    field = "lines"


class AmountExceedsDue(BillingError):
    """A payment or credit larger than the invoice's amount due."""

    field = "amount"


class CreditExceedsRemaining(AmountExceedsDue):
    """A credit note larger than what is left on the invoice."""

    field = "credit_note"


class RefundExceedsPaid(BillingError):
    """A refund larger than what was paid on the invoice."""

    field = "amount"


class MissingConfiguration(BillingError):
    """Something billing needs is not set up (company profile, numbering series)."""
