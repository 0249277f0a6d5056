"""The review list: an operator applies a reviewed bank line to an invoice (it becomes a
bank-transfer payment) or dismisses it with the reason. Audited ``bank_line.applied`` /
``bank_line.dismissed``."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from audit import record
from billing.models import Invoice
from payments.exceptions import InvalidPayment
from payments.models import BankLine, Payment
from payments.reconciliation.bank_lines import record_bank_payments
from security.actors import Actor

Kind = BankLine.Kind


def apply_bank_line(
    line: BankLine, *, invoice: Invoice, by: Actor, request: HttpRequest | None = None
) -> Payment:
    """An operator applies a reviewed line to an invoice: same currency, at most the amount due."""
    with transaction.atomic():
        locked = BankLine.objects.select_for_update().get(pk=line.pk)
        if locked.status != BankLine.Status.REVIEW:
            raise InvalidPayment(_("this bank line is already resolved"), field="status")
        if locked.kind != Kind.CREDIT:
            raise InvalidPayment(
                _(
                    "only money in can pay an invoice: a %(kind)s is dismissed with the reason"
                    " (take a payment back by refunding it)"
                )
                % {"kind": locked.get_kind_display().lower()},
                field="status",
            )
        if locked.amount <= 0 or not locked.currency:
            raise InvalidPayment(_("a malformed line cannot be applied"), field="amount")
        target = Invoice.objects.select_for_update(of=("self",)).get(pk=invoice.pk)
        if target.currency != locked.currency:
            raise InvalidPayment(
                _("the line is in %(line)s, the invoice in %(invoice)s")
                % {"line": locked.currency, "invoice": target.currency},
                field="currency",
            )
        locked.status = BankLine.Status.RESOLVED
        locked.invoice = target
        locked.save(update_fields=["status", "invoice"])
        try:
            [payment] = record_bank_payments([locked], by=by)
        except Exception as exc:
            message = getattr(exc, "message", str(exc))
            raise InvalidPayment(
                _("the invoice cannot take it: %(reason)s") % {"reason": message}, field="invoice"
            ) from exc
        record(
            "bank_line.applied",
            actor=by,
            obj=locked,
            request=request,
            invoice_id=target.pk,
            payment_id=payment.pk,
            amount=locked.amount,
        )
    return payment


def dismiss_bank_line(
    line: BankLine, *, reason: str, by: Actor, request: HttpRequest | None = None
) -> BankLine:
    """An operator closes a reviewed line without a payment (e.g. sent back to the payer)."""
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise InvalidPayment(_("give the reason for dismissing the line"), field="reason")
    with transaction.atomic():
        locked = BankLine.objects.select_for_update().get(pk=line.pk)
        if locked.status != BankLine.Status.REVIEW:
            raise InvalidPayment(_("this bank line is already resolved"), field="status")
        locked.status = BankLine.Status.RESOLVED
        locked.detail = f"dismissed: {reason}"[:300]
        locked.save(update_fields=["status", "detail"])
        record("bank_line.dismissed", actor=by, obj=locked, request=request, reason=reason[:300])
    return locked
