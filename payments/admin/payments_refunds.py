"""Payments and refunds in the admin: the refund page (step-up) and the risk review of held
payments (step-up). Read-only lists; every change is a form that calls one service."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.admin import ReadOnlyAdmin
from billing.exceptions import BillingError
from billing.models import Invoice
from billing.money import Money
from payments.exceptions import PaymentsError
from payments.fraud.services import DECIDE_PERMISSION
from payments.models import Payment, Refund, RiskDecision
from payments.services import (
    REFUND_PERMISSION,
    decide_risk_review,
    record_refused_risk_review,
    refund_payment,
)
from security.decorators import step_up_required


class RefundForm(forms.Form):
    amount = forms.DecimalField(max_digits=16, decimal_places=3, min_value=Decimal("0.001"))
    # No initial choice: the operator says what the refund is for, every time.
    purpose = forms.ChoiceField(
        label=gettext_lazy("What is the refund for?"),
        choices=Refund.Purpose.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": gettext_lazy(
                "Choose what the refund is for: with a credit note (the invoice stays paid)"
                " or reopening the invoice (the amount is owed again). Nothing was refunded."
            )
        },
    )
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))


class RiskReviewForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[
            ("approve", "Approve: charge the card"),
            ("decline", "Decline: nothing is charged"),
        ],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))


class RiskReviewFilter(admin.SimpleListFilter):
    """The fraud analysts' queue: payments held by the risk engine, waiting for a decision."""

    title = "risk review"
    parameter_name = "risk_review"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("waiting", "Waiting for a decision"), ("decided", "Decided")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "waiting":
            return queryset.awaiting_risk_review()
        if self.value() == "decided":
            return queryset.filter(risk_reviewed_at__isnull=False)
        return queryset


class RefundInline(admin.TabularInline):
    model = Refund
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "amount",
        "currency",
        "status",
        "purpose",
        "credit_note",
        "reason",
        "created_by",
        "created_at",
    )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "pk",
        "invoice",
        "amount_display",
        "method",
        "status",
        "card_last4",
        "risk_decision",
        "created_at",
    ]
    list_filter = [RiskReviewFilter, "status", "risk_decision", "method", "gateway"]
    search_fields = ["invoice__display_number", "gateway_reference", "card_last4"]
    list_select_related = ["invoice"]
    readonly_fields = (
        "invoice",
        "amount_display",
        "method",
        "status",
        "card_brand",
        "card_last4",
        "gateway",
        "gateway_reference",
        "risk_decision",
        "risk_reasons_display",
        "risk_review_link",
        "risk_reviewed_by",
        "risk_reviewed_at",
        "risk_review_note",
        "failure_code",
        "failure_message",
        "refunded_display",
        "created_by",
        "created_at",
        "settled_at",
        "refund_link",
    )
    fields = readonly_fields
    inlines = [RefundInline]

    @admin.display(description="amount")
    def amount_display(self, obj: Payment) -> str:
        return str(obj.money)

    @admin.display(description="refunded")
    def refunded_display(self, obj: Payment) -> str:
        return str(Money(obj.refunded_amount, obj.currency))

    @admin.display(description="refund")
    def refund_link(self, obj: Payment) -> str:
        if obj.refundable <= 0:
            return "—"
        return format_html(
            '<a class="button" href="{}">Refund…</a>',
            reverse("admin:payments_payment_refund", args=[obj.pk]),
        )

    @admin.display(description="risk reasons")
    def risk_reasons_display(self, obj: Payment) -> str:
        return "; ".join(str(reason.get("message", "")) for reason in obj.risk_reasons) or "—"

    @admin.display(description="risk review")
    def risk_review_link(self, obj: Payment) -> str:
        if not obj.awaiting_risk_review:
            return "—"
        return format_html(
            '<a class="button" href="{}">Approve or decline…</a>',
            reverse("admin:payments_payment_risk_review", args=[obj.pk]),
        )

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:pk>/risk-review/",
                self.admin_site.admin_view(step_up_required(self.risk_review_view)),
                name="payments_payment_risk_review",
            ),
            path(
                "<int:pk>/refund/",
                self.admin_site.admin_view(step_up_required(self.refund_view)),
                name="payments_payment_refund",
            ),
            *super().get_urls(),
        ]

    def refund_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Refund part or all of a payment: permission, fresh second factor, a reason."""
        if not request.user.has_perm(REFUND_PERMISSION):
            raise PermissionDenied
        payment = get_object_or_404(Payment.objects.select_related("invoice"), pk=pk)
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                amount = Money.from_decimal(form.cleaned_data["amount"], payment.currency)
                refund = refund_payment(
                    payment,
                    amount=amount,
                    reason=form.cleaned_data["reason"],
                    purpose=form.cleaned_data["purpose"],
                    by=request.user,
                    request=request,
                )
            except (PaymentsError, BillingError, InvalidOperation) as exc:
                field = getattr(exc, "field", None)
                message = str(getattr(exc, "message", exc))
                form.add_error(field if field in form.fields else None, message)
            else:
                messages.success(request, _refund_outcome(refund, payment))
                return HttpResponseRedirect(
                    reverse("admin:payments_payment_change", args=[payment.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Refund {payment}",
            "opts": self.model._meta,
            "payment": payment,
            "refundable": Money(payment.refundable, payment.currency),
            "form": form,
        }
        return TemplateResponse(request, "admin/payments/refund.html", context)

    def risk_review_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Approve (the card is charged) or decline a payment held for review, with a reason."""
        if not request.user.has_perm(DECIDE_PERMISSION):
            if request.method == "POST":  # an attempt to decide, not just a look: audited
                record_refused_risk_review(pk, by=request.user, request=request)
            raise PermissionDenied
        payment = get_object_or_404(Payment.objects.select_related("invoice"), pk=pk)
        change_url = reverse("admin:payments_payment_change", args=[payment.pk])
        if payment.risk_decision != RiskDecision.REVIEW:
            raise Http404("This payment was not held for review.")
        form = RiskReviewForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            approve = form.cleaned_data["decision"] == "approve"
            try:
                decided = decide_risk_review(
                    payment,
                    approve=approve,
                    reason=form.cleaned_data["reason"],
                    by=request.user,
                    request=request,
                )
            except PaymentsError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                verb = "approved" if approve else "declined"
                messages.success(request, f"{decided}: {verb}.")
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Risk review of {payment}",
            "opts": self.model._meta,
            "payment": payment,
            "form": form,
        }
        return TemplateResponse(request, "admin/payments/risk_review.html", context)


def _refund_outcome(refund: Refund, payment: Payment) -> str:
    """What became of the refund and of the invoice, for the operator."""
    if refund.status != Refund.Status.SUCCEEDED:
        return _("%(refund)s for %(payment)s: waiting for the acquirer; the job retries it.") % {
            "refund": refund,
            "payment": payment,
        }
    invoice = Invoice.objects.get(pk=payment.invoice_id)
    if refund.credit_note is not None:
        return _(
            "%(refund)s for %(payment)s. Credit note %(note)s issued; invoice %(invoice)s"
            " stays %(status)s. The customer gets the credit note and a refund receipt."
        ) % {
            "refund": refund,
            "payment": payment,
            "note": refund.credit_note.display_number,
            "invoice": invoice.display_number,
            "status": invoice.get_status_display().lower(),
        }
    return _(
        "%(refund)s for %(payment)s. The refunded amount is owed again: invoice %(invoice)s is"
        " %(status)s with %(due)s due; the customer is told."
    ) % {
        "refund": refund,
        "payment": payment,
        "invoice": invoice.display_number,
        "status": invoice.get_status_display().lower(),
        "due": invoice.due,
    }


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = [
        "pk",
        "payment",
        "amount",
        "currency",
        "status",
        "purpose",
        "credit_note",
        "compensation",
        "created_at",
    ]
    list_filter = ["status", "purpose", "compensation"]
    list_select_related = ["payment"]
