"""What every billing service shares: the one map of status transitions, locking and
checking helpers."""

from __future__ import annotations

import datetime
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, TypeVar

from django.core.exceptions import ValidationError
from django.db import models

from billing.exceptions import (
    InvalidInput,
    InvalidStatusTransition,
    InvoiceNotDraft,
)
from billing.models import (
    Invoice,
    InvoiceLine,
)
from billing.money import Money
from db.compiled import compiled
from security.actors import Actor as Actor  # billing's services take ``by: Actor``

"""A user, a saved model instance, or ``audit.SYSTEM`` (see ``audit.record``)."""


class InvoiceWithLines(NamedTuple):
    """An invoice and its lines in their order, as the service that wrote them has them (the
    API answers with both, without reading the lines again)."""

    invoice: Invoice
    lines: list[InvoiceLine]


Status = Invoice.Status

# The one map of allowed status changes. A credit note goes DRAFT -> OPEN -> PAID
# as it is issued: it is applied in full to its invoice at once (docs/billing.md).
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.DRAFT: frozenset({Status.OPEN}),
    Status.OPEN: frozenset({Status.PAID, Status.VOID, Status.UNCOLLECTIBLE}),
    Status.PAID: frozenset({Status.OPEN}),
    Status.UNCOLLECTIBLE: frozenset({Status.PAID, Status.VOID}),
    Status.VOID: frozenset(),
}

_M = TypeVar("_M", bound=models.Model)

CUSTOMER_FIELDS = (
    "name",
    "kind",
    "identity_number",
    "vat_id",
    "email",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "country",
    "language",
    "currency",
    "payment_terms_days",
)
"""The customer fields services accept, in form order (the admin shows these)."""
COMPANY_FIELDS = (
    "legal_name",
    "organisation_number",
    "vat_number",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "country",
    "email",
    "phone",
    "bankgiro",
    "iban",
    "bic",
    "f_skatt_text",
    "logo",
    "default_payment_terms_days",
    "customer_language",
)
"""The company-profile fields services accept, in form order."""
_DRAFT_FIELDS = frozenset({"customer", "currency", "payment_terms_days", "due_date", "notes"})
_LINE_FIELDS = frozenset(
    {"description", "quantity", "unit", "unit_price", "vat_category", "vat_rate", "position"}
)


def _transition(invoice: Invoice, to: str) -> str:
    """Move ``invoice.status`` to ``to`` if ALLOWED_TRANSITIONS permits it; return the old one."""
    current = invoice.status
    if to == current:
        return current
    if to not in ALLOWED_TRANSITIONS[current]:
        raise InvalidStatusTransition(
            f"{invoice} is {current}; it cannot become {to}", field="status"
        )
    invoice.status = to
    return current


def _unknown_fields(given: Mapping[str, Any], allowed: Collection[str]) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise InvalidInput(f"unknown or read-only field(s): {', '.join(unknown)}", field=unknown[0])


def _printable(value: str, field: str, *, lines: bool = False) -> str:
    """``value`` if it holds no control character (a line break and a tab only where
    ``lines``); else InvalidInput naming ``field``. What the services store is printed
    on the PDF and the portal: no font draws a control character, a PDF's text layer
    breaks on one, and PostgreSQL cannot store a NUL."""
    allowed = "\n\t" if lines else ""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs") and char not in allowed:
            raise InvalidInput(
                f"must not contain the control character U+{ord(char):04X}", field=field
            )
    return value


def _validate(instance: models.Model, *, exclude: Sequence[str] = ()) -> None:
    """Run the model's field validators and clean(); the first error names its field.

    Text is checked by ``_printable`` first (a line break and a tab only in a
    ``TextField``): a NUL, say, would otherwise reach PostgreSQL, whose error names no
    field (forms refuse one too; imports and scripts reach the services directly)."""
    for column in instance._meta.concrete_fields:
        value = getattr(instance, column.attname, None)
        if column.name not in exclude and isinstance(value, str):
            _printable(value, column.name, lines=isinstance(column, models.TextField))
    try:
        instance.full_clean(
            exclude=list(exclude), validate_unique=False, validate_constraints=False
        )
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            field, errors = next(iter(exc.message_dict.items()))
            raise InvalidInput("; ".join(errors), field=field) from exc
        raise InvalidInput("; ".join(exc.messages)) from exc


def _locked(instance: _M) -> _M:
    """A fresh copy of the row, locked FOR UPDATE until the transaction ends."""
    model = type(instance)
    return model._default_manager.select_for_update().get(pk=instance.pk)


@compiled(int)
def _invoice_locked(pk: int) -> models.QuerySet[Invoice]:
    return (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer", "series")
        .filter(pk=pk)
    )


def _lock_invoice(invoice: Invoice | int) -> Invoice:
    pk = invoice.pk if isinstance(invoice, Invoice) else invoice
    found = _invoice_locked.first(int(pk))
    if found is None:
        raise Invoice.DoesNotExist(f"no invoice {pk}")
    return found


def _lock_invoices(ids: Collection[int]) -> dict[int, Invoice]:
    """The invoices ``ids``, locked FOR UPDATE in id order (the one order every lock of
    several invoices takes, so two of them never deadlock); an unknown id raises."""
    wanted = set(ids)
    if len(wanted) == 1:  # a card payment's settle: the hot path
        one = _lock_invoice(next(iter(wanted)))
        return {one.pk: one}
    locked = {
        invoice.pk: invoice
        for invoice in Invoice.objects.select_for_update(of=("self",))
        .select_related("customer", "series")
        .filter(pk__in=wanted)
        .order_by("pk")
    }
    if len(locked) != len(wanted):
        raise Invoice.DoesNotExist(f"no invoice {min(wanted - set(locked))}")
    return locked


def _require_draft(invoice: Invoice) -> None:
    if invoice.status != Status.DRAFT:
        raise InvoiceNotDraft(
            f"{invoice} is finalized ({invoice.status}); its content can never change"
            " (issue a credit note instead)",
            field="status",
        )


def _decimal(value: object, field: str) -> Decimal:
    if isinstance(value, float):
        raise InvalidInput("must be a Decimal or a string, never a float", field=field)
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise InvalidInput(f"{value!r} is not a number", field=field) from exc
    if not result.is_finite():
        raise InvalidInput(f"{value!r} is not a number", field=field)
    return result


def _money_of(invoice: Invoice, amount: Money) -> int:
    if not isinstance(amount, Money):
        raise InvalidInput("must be a Money value", field="amount")
    if amount.currency != invoice.currency:
        raise InvalidInput(
            f"{amount.currency} does not match the invoice's currency {invoice.currency}",
            field="currency",
        )
    if amount.amount <= 0:
        raise InvalidInput(f"must be greater than zero, not {amount}", field="amount")
    return amount.amount


def _check_due_date(due_date: datetime.date | None, issue_date: datetime.date) -> None:
    if due_date is not None and due_date < issue_date:
        raise InvalidInput(
            f"the due date {due_date} is before the issue date {issue_date}", field="due_date"
        )
