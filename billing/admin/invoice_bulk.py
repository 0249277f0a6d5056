"""The invoice list's bulk actions: finalize, void, mark uncollectible, credit in full.

All four go through one flow (``InvoiceBulkActionsAdmin._confirm_then_apply``): the first
POST (the action chosen on the list) changes nothing and answers with one confirmation page
(``bulk_confirm.html``) listing the selected invoices the action applies to, the number each
will take (a draft's invoice number, a credit note's K-number, named by
``billing.services.preview_credit_note``) and the amount; only its explicit confirmation
(``post=yes``, with the page's CSRF token) runs the service, once per invoice in id order
(the order the numbers were named in), each in its own transaction and checked again under
the invoice's lock. The message names the numbers taken; a refused invoice is named with
the reason, and the others still go ahead. Cancel is a link back to the list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing import services
from billing.admin_format import format_money
from billing.exceptions import BillingError
from billing.models import Invoice
from billing.vat import compute_totals

Status = Invoice.Status


@dataclass(frozen=True)
class Row:
    """One selected invoice on the confirmation page: the number it or its credit note will
    take ("" when none is taken) and the amount the action concerns."""

    invoice: Invoice
    number: str
    amount: str


@dataclass(frozen=True)
class BulkAction:
    """What one bulk action says on its confirmation page and what it does once confirmed."""

    name: str
    title: Promise
    explanation: Promise
    number_heading: Promise | None  # None: the action takes no number
    amount_heading: Promise
    confirm: Promise
    done: Promise  # "Voided", then the numbers
    applies_to: Callable[[QuerySet[Invoice]], QuerySet[Invoice]]
    rows: Callable[[list[Invoice]], list[Row]]
    service: Callable[..., Invoice]
    asks_reason: bool = True


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason (kept in the audit log)"),
        max_length=500,
        required=False,
        widget=forms.TextInput(attrs={"size": 60}),
    )


def _money(invoice: Invoice, amount: int) -> str:
    return format_money(amount, invoice.currency)


def _finalize_rows(drafts: list[Invoice]) -> list[Row]:
    """Each draft with the next number of its series, counted on in id order."""
    taken: dict[int, int] = {}
    rows = []
    for invoice in drafts:
        series = invoice.series
        number = taken.get(series.pk, series.next_number)
        taken[series.pk] = number + 1
        totals = compute_totals(
            (line.vat_category, line.vat_rate, line.net_amount) for line in invoice.lines.all()
        )
        rows.append(Row(invoice, series.display_number(number), _money(invoice, totals.gross)))
    return rows


def _credit_rows(invoices: list[Invoice]) -> list[Row]:
    """Each invoice with the K-number and total of the credit note for all that is left of it
    (the notes are issued one after the other, so each takes the next number)."""
    rows = []
    for ahead, invoice in enumerate(invoices):
        try:
            preview = services.preview_credit_note(invoice, ahead=ahead)
        except BillingError as exc:
            rows.append(Row(invoice, "", str(exc)))
        else:
            rows.append(Row(invoice, preview.number, _money(invoice, preview.totals.gross)))
    return rows


def _void(invoice: Invoice, *, by: Any, reason: str) -> Invoice:
    return services.void_invoice(invoice, by=by, reason=reason)


def _uncollectible(invoice: Invoice, *, by: Any, reason: str) -> Invoice:
    return services.mark_uncollectible(invoice, by=by, reason=reason)


def _credit_in_full(invoice: Invoice, *, by: Any, reason: str) -> Invoice:
    return services.issue_credit_note(invoice, by=by, reason=reason)


def _finalize(invoice: Invoice, *, by: Any, reason: str) -> Invoice:
    return services.finalize_invoice(invoice, by=by)


FINALIZE = BulkAction(
    name="finalize",
    title=gettext_lazy("Finalize the selected drafts"),
    explanation=gettext_lazy(
        "These drafts take these numbers (the next of their series, in this order; another"
        " invoice finalized first would move them on). Once finalized they can never change."
    ),
    number_heading=gettext_lazy("Number"),
    amount_heading=gettext_lazy("Total"),
    confirm=gettext_lazy("Finalize them"),
    done=gettext_lazy("Finalized"),
    applies_to=lambda qs: qs.filter(status=Status.DRAFT).prefetch_related("lines"),
    rows=_finalize_rows,
    service=_finalize,
    asks_reason=False,
)
VOID = BulkAction(
    name="void",
    title=gettext_lazy("Void the selected invoices"),
    explanation=gettext_lazy(
        "These invoices become void: each keeps its number and is owed by nobody. Only an"
        " invoice with nothing paid or credited can be voided."
    ),
    number_heading=None,
    amount_heading=gettext_lazy("Total"),
    confirm=gettext_lazy("Void them"),
    done=gettext_lazy("Voided"),
    applies_to=lambda qs: qs.filter(
        kind=Invoice.Kind.INVOICE,
        status__in=(Status.OPEN, Status.UNCOLLECTIBLE),
        amount_paid=0,
        amount_credited=0,
    ),
    rows=lambda invoices: [Row(i, "", _money(i, i.gross_total)) for i in invoices],
    service=_void,
)
UNCOLLECTIBLE = BulkAction(
    name="mark_uncollectible",
    title=gettext_lazy("Mark the selected invoices uncollectible"),
    explanation=gettext_lazy(
        "These invoices are written off as bad debt for the amounts due below; a payment"
        " that still comes counts."
    ),
    number_heading=None,
    amount_heading=gettext_lazy("Amount due"),
    confirm=gettext_lazy("Mark them uncollectible"),
    done=gettext_lazy("Marked uncollectible"),
    applies_to=lambda qs: qs.filter(kind=Invoice.Kind.INVOICE, status=Status.OPEN),
    rows=lambda invoices: [Row(i, "", _money(i, i.amount_due)) for i in invoices],
    service=_uncollectible,
)
FULL_CREDIT = BulkAction(
    name="issue_full_credit_note",
    title=gettext_lazy("Credit the selected invoices in full"),
    explanation=gettext_lazy(
        "Each invoice gets a credit note for all that is left of it, numbered in this order"
        " (another credit note issued first would move the numbers on). The notes are signed"
        " and sent to the customers."
    ),
    number_heading=gettext_lazy("Credit note"),
    amount_heading=gettext_lazy("Credit, VAT included"),
    confirm=gettext_lazy("Issue the credit notes"),
    done=gettext_lazy("Credited in full"),
    applies_to=lambda qs: qs.filter(
        kind=Invoice.Kind.INVOICE,
        status__in=(Status.OPEN, Status.UNCOLLECTIBLE),
        gross_total__gt=F("amount_paid") + F("amount_credited"),
    ),
    rows=_credit_rows,
    service=_credit_in_full,
)


class InvoiceBulkActionsAdmin(admin.ModelAdmin):
    """Mixed into the invoice admin: the list's bulk actions, each confirmed first."""

    @admin.action(
        description=gettext_lazy("Finalize selected drafts (number and freeze)"),
        permissions=["change"],
    )
    def finalize(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> Any:
        return self._confirm_then_apply(request, queryset, FINALIZE)

    @admin.action(description=gettext_lazy("Void selected invoices"), permissions=["change"])
    def void(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> Any:
        return self._confirm_then_apply(request, queryset, VOID)

    @admin.action(
        description=gettext_lazy("Mark selected invoices uncollectible"), permissions=["change"]
    )
    def mark_uncollectible(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> Any:
        return self._confirm_then_apply(request, queryset, UNCOLLECTIBLE)

    @admin.action(
        description=gettext_lazy("Issue a credit note for all that is left of selected invoices"),
        permissions=["change"],
    )
    def issue_full_credit_note(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> Any:
        return self._confirm_then_apply(request, queryset, FULL_CREDIT)

    # --- the one flow ------------------------------------------------------------------

    def _confirm_then_apply(
        self, request: HttpRequest, queryset: QuerySet[Invoice], action: BulkAction
    ) -> TemplateResponse | None:
        """The confirmation page; once confirmed, the action (None: back to the list)."""
        confirmed = request.POST.get("post") == "yes"
        form = ReasonForm(request.POST if confirmed else None)
        if confirmed and form.is_valid():
            self._apply(request, queryset, action, form.cleaned_data["reason"])
            return None
        selected = queryset.select_related("customer", "series").order_by("pk")
        rows = action.rows(list(action.applies_to(selected)))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": action.title,
            "action": action,
            "rows": rows,
            "queryset": selected,
            "skipped": queryset.count() - len(rows),
            "form": form if action.asks_reason else None,
        }
        return TemplateResponse(request, "admin/billing/invoice/bulk_confirm.html", context)

    def _apply(
        self, request: HttpRequest, queryset: QuerySet[Invoice], action: BulkAction, reason: str
    ) -> None:
        """One service call per invoice, each in its own transaction; the message names
        the numbers taken (a credit note's own number beside its invoice's)."""
        succeeded: list[str] = []
        for invoice in queryset.order_by("pk"):
            try:
                result = action.service(invoice, by=request.user, reason=reason)
            except BillingError as exc:
                self.message_user(request, f"{invoice}: {exc}", messages.ERROR)
            else:
                if result.pk != invoice.pk:
                    succeeded.append(f"{invoice.display_number} ({result.display_number})")
                else:
                    succeeded.append(result.display_number or str(result))
        if succeeded:
            self.message_user(
                request,
                _("%(done)s: %(numbers)s.")
                % {"done": action.done, "numbers": ", ".join(succeeded)},
                messages.SUCCESS,
            )
