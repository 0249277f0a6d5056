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
from billing.admin_format import format_money, format_time
from billing.exceptions import BillingError
from billing.models import Invoice
from billing.money import Money
from payments.exceptions import PaymentsError
from payments.fraud.rule_selectors import review_context
from payments.fraud.services import DECIDE_PERMISSION
from payments.models import Payment, Refund, RiskDecision
from payments.services import (
    REFUND_PERMISSION,
    decide_risk_review,
    record_refused_risk_review,
    refund_as_fraud,
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


class FraudRefundForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("What shows it is fraud"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


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
        "amount_display",
        "status",
        "purpose",
        "credit_note",
        "reason",
        "created_by",
        "created_at",
    )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=gettext_lazy("amount"))
    def amount_display(self, obj: Refund) -> str:
        return format_money(obj.amount, obj.currency)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    # Fits 1,366 pixels with both sidebars: the method shows in the card column, the risk
    # score beside the status, the risk decision in the filters ("risk review", "risk
    # decision") and on the payment's page.
    list_display = [
        "payment_label",
        "invoice_number",
        "customer_name",
        "amount_display",
        "status_and_score",
        "card_display",
        "created",
    ]
    list_display_links = ["payment_label"]
    list_filter = [RiskReviewFilter, "status", "risk_decision", "method", "gateway"]
    search_fields = [
        "=id",
        "invoice__display_number",
        "invoice__ocr_reference",
        "invoice__customer__name",
        "gateway_reference",
        "card_last4",
    ]
    search_help_text = gettext_lazy(
        "Payment number, invoice number or OCR, customer, gateway reference, card's last 4"
    )
    list_select_related = ["invoice", "invoice__customer", "risk_evaluation"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    class Media:
        css = {"all": ("staff/lists.css",)}

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
        "fraud_refund_link",
    )
    fields = readonly_fields
    inlines = [RefundInline]

    @admin.display(description=gettext_lazy("payment"), ordering="pk")
    def payment_label(self, obj: Payment) -> str:
        return f"#{obj.pk}"

    @admin.display(description=gettext_lazy("customer"), ordering="invoice__customer__name")
    def customer_name(self, obj: Payment) -> str:
        return obj.invoice.customer.name

    @admin.display(description=gettext_lazy("invoice"), ordering="invoice__display_number")
    def invoice_number(self, obj: Payment) -> str:
        return obj.invoice.display_number

    @admin.display(description=gettext_lazy("card or transfer"))
    def card_display(self, obj: Payment) -> str:
        if obj.card_last4:
            return f"{obj.card_brand} •••• {obj.card_last4}"
        return str(obj.get_method_display())

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_and_score(self, obj: Payment) -> str:
        evaluation = getattr(obj, "risk_evaluation", None)
        if evaluation is None or evaluation.score is None:
            return str(obj.get_status_display())
        return f"{obj.get_status_display()} · {_('score')} {evaluation.score}"

    @admin.display(description=gettext_lazy("made"), ordering="created_at")
    def created(self, obj: Payment) -> str:
        return format_time(obj.created_at)

    @admin.display(description=gettext_lazy("amount"), ordering="amount")
    def amount_display(self, obj: Payment) -> str:
        return format_money(obj.amount, obj.currency)

    @admin.display(description=gettext_lazy("refunded"))
    def refunded_display(self, obj: Payment) -> str:
        return format_money(obj.refunded_amount, obj.currency)

    @admin.display(description="refund")
    def refund_link(self, obj: Payment) -> str:
        if obj.refundable <= 0:
            return "—"
        return format_html(
            '<a class="button" href="{}">Refund…</a>',
            reverse("admin:payments_payment_refund", args=[obj.pk]),
        )

    @admin.display(description="refund as fraud")
    def fraud_refund_link(self, obj: Payment) -> str:
        if obj.refundable <= 0 or obj.method != Payment.Method.CARD:
            return "—"
        return format_html(
            '<a class="button" href="{}">Refund as fraud…</a>',
            reverse("admin:payments_payment_refund_as_fraud", args=[obj.pk]),
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
                "<int:pk>/refund-as-fraud/",
                self.admin_site.admin_view(step_up_required(self.refund_as_fraud_view)),
                name="payments_payment_refund_as_fraud",
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
            **review_context(payment.pk, payment.invoice.customer_id),
        }
        return TemplateResponse(request, "admin/payments/risk_review.html", context)

    def refund_as_fraud_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Refund what is left of a captured card payment found to be fraud, with a reason:
        the invoice is owed again, the payment labelled fraud (``refund_as_fraud``)."""
        if not request.user.has_perm(DECIDE_PERMISSION):
            raise PermissionDenied
        payment = get_object_or_404(Payment.objects.select_related("invoice"), pk=pk)
        form = FraudRefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                refund = refund_as_fraud(
                    payment, reason=form.cleaned_data["reason"], by=request.user, request=request
                )
            except (PaymentsError, BillingError) as exc:
                field = getattr(exc, "field", None)
                form.add_error(field if field in form.fields else None, exc.message)
            else:
                messages.success(request, _refund_outcome(refund, payment))
                return HttpResponseRedirect(
                    reverse("admin:payments_payment_change", args=[payment.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Refund {payment} as fraud",
            "opts": self.model._meta,
            "payment": payment,
            "refundable": Money(payment.refundable, payment.currency),
            "form": form,
            **review_context(payment.pk, payment.invoice.customer_id),
        }
        return TemplateResponse(request, "admin/payments/refund_as_fraud.html", context)


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
        "refund_label",
        "payment",
        "customer_name",
        "amount_display",
        "status",
        "purpose",
        "credit_note",
        "compensation",
        "created_at",
    ]
    list_filter = ["status", "purpose", "compensation"]
    list_display_links = ["refund_label"]
    fields = readonly_fields = (
        "payment",
        "amount_display",
        "status",
        "purpose",
        "reason",
        "credit_note",
        "compensation",
        "gateway_reference",
        "failure_message",
        "created_by",
        "created_at",
        "settled_at",
    )
    list_select_related = ["payment", "payment__invoice__customer", "credit_note"]
    search_fields = ["=id", "payment__invoice__display_number", "payment__invoice__customer__name"]
    date_hierarchy = "created_at"

    @admin.display(description=gettext_lazy("refund"), ordering="pk")
    def refund_label(self, obj: Refund) -> str:
        return f"#{obj.pk}"

    @admin.display(description=gettext_lazy("customer"))
    def customer_name(self, obj: Refund) -> str:
        return obj.payment.invoice.customer.name

    @admin.display(description=gettext_lazy("amount"), ordering="amount")
    def amount_display(self, obj: Refund) -> str:
        return format_money(obj.amount, obj.currency)
