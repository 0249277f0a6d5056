"""The actions of one invoice, on its own admin page: Finalize, Void, Credit, Preview PDF.

Each action is a page of its own under the invoice (``<id>/finalize/``, ``<id>/void/``,
``<id>/credit/``, ``<id>/preview.pdf``): a confirmation that names the number the invoice
or credit note will take, then one service call (``billing.services``), which checks
everything again under the invoice's lock. Bad input or a stale page (the invoice changed
in another tab) comes back on the form, naming the field; nothing is changed. The live
totals of a draft's line editor are computed by ``billing.services.draft_totals``
(``totals/``, called by ``staff/invoice_totals.js`` as the clerk types).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from billing import services
from billing.admin_format import format_date, format_money
from billing.exceptions import BillingError, InvalidInput
from billing.models import Invoice
from billing.money import Money, format_decimal, parse_decimal

CHANGE_PERMISSION = "billing.change_invoice"


def _field_error(form: forms.Form, exc: BillingError, fallback: str | None = None) -> None:
    """A service's refusal on the field it names (else on ``fallback``, else the form)."""
    field = exc.field if exc.field in form.fields else fallback
    form.add_error(field, exc.message)


class VoidForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"), max_length=500, widget=forms.TextInput(attrs={"size": 60})
    )


class CreditForm(forms.Form):
    """Credit all that is left, some of each line, or an amount (VAT included)."""

    MODES = (
        ("all", gettext_lazy("All that is left")),
        ("lines", gettext_lazy("By line: the quantities below")),
        ("amount", gettext_lazy("An amount, VAT included")),
    )
    mode = forms.ChoiceField(
        label=gettext_lazy("Credit"), choices=MODES, widget=forms.RadioSelect, initial="all"
    )
    amount = forms.CharField(label=gettext_lazy("Amount"), required=False, max_length=40)
    reason = forms.CharField(
        label=gettext_lazy("Reason (printed on the credit note)"),
        max_length=500,
        widget=forms.TextInput(attrs={"size": 60}),
    )

    def __init__(self, *args: Any, invoice: Invoice, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.invoice = invoice
        self.line_fields: list[tuple[str, Any, Decimal]] = []
        left = services.credit_note_quantities_left(invoice)
        for line in invoice.lines.order_by("position", "pk"):
            name = f"line_{line.pk}"
            remaining = left.get(line.pk, Decimal(0))
            self.fields[name] = forms.DecimalField(
                label=line.description,
                required=False,
                min_value=Decimal(0),
                max_digits=14,
                decimal_places=4,
                help_text=_("%(left)s of %(quantity)s left")
                % {"left": _quantity(remaining), "quantity": _quantity(line.quantity)},
                widget=forms.NumberInput(attrs={"size": 8, "step": "any"}),
            )
            self.line_fields.append((name, line, remaining))

    def clean_amount(self) -> Money | None:
        text = str(self.cleaned_data.get("amount") or "").strip()
        if self.data.get("mode") != "amount":
            return None
        if not text:
            raise forms.ValidationError(_("Say how much to credit."))
        try:
            value = parse_decimal(text, translation.get_language() or "en")
            return Money.from_decimal(value, self.invoice.currency)
        except InvalidInput as exc:
            raise forms.ValidationError(exc.message) from exc

    def credit_lines(self) -> list[services.CreditLine] | None:
        """The lines to credit (mode "lines"), None for all that is left."""
        if self.cleaned_data.get("mode") != "lines":
            return None
        chosen = [
            services.CreditLine(line.pk, self.cleaned_data[name])
            for name, line, _left in self.line_fields
            if self.cleaned_data.get(name)
        ]
        if not chosen:
            self.add_error(None, _("Give the quantity to credit of at least one line."))
        return chosen


def _quantity(value: Decimal) -> str:
    return format_decimal(value, translation.get_language() or "en")


class InvoiceActionsAdmin(admin.ModelAdmin):
    """Mixed into the invoice admin: the action pages of one invoice."""

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("totals/", wrap(require_POST(self.totals_view)), name="billing_invoice_totals"),
            path(
                "<path:object_id>/finalize/",
                wrap(self.finalize_view),
                name="billing_invoice_finalize",
            ),
            path("<path:object_id>/void/", wrap(self.void_view), name="billing_invoice_void"),
            path("<path:object_id>/credit/", wrap(self.credit_view), name="billing_invoice_credit"),
            path(
                "<path:object_id>/preview.pdf",
                wrap(self.preview_pdf_view),
                name="billing_invoice_preview_pdf",
            ),
            *super().get_urls(),
        ]

    # --- shared ----------------------------------------------------------------------

    def _invoice(self, request: HttpRequest, object_id: str, *, change: bool = True) -> Invoice:
        invoice = self.get_object(request, object_id)
        if invoice is None or not self.has_view_permission(request, invoice):
            raise Http404("No such invoice")
        if change and not request.user.has_perm(CHANGE_PERMISSION):
            raise PermissionDenied
        return invoice

    def _page(
        self, request: HttpRequest, invoice: Invoice, template: str, **context: Any
    ) -> TemplateResponse:
        return TemplateResponse(
            request,
            f"admin/billing/invoice/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "original": invoice,
                "invoice": invoice,
                "gross": format_money(invoice.gross_total, invoice.currency),
                "due": format_money(invoice.amount_due, invoice.currency),
                **context,
            },
        )

    def _back(self, invoice: Invoice) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:billing_invoice_change", args=[invoice.pk]))

    def _refused(self, request: HttpRequest, invoice: Invoice, exc: BillingError) -> HttpResponse:
        self.message_user(request, _("Nothing was changed. %s") % exc, messages.ERROR)
        return self._back(invoice)

    # --- finalize ---------------------------------------------------------------------

    def finalize_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: what finalizing will do, naming the number; POST: finalize the draft."""
        invoice = self._invoice(request, object_id)
        if not invoice.is_draft:
            self.message_user(
                request,
                _("%(invoice)s is already finalized: nothing was changed.") % {"invoice": invoice},
                messages.ERROR,
            )
            return self._back(invoice)
        if request.method == "POST":
            try:
                done = services.finalize_invoice(invoice, by=request.user)
            except BillingError as exc:
                return self._refused(request, invoice, exc)
            self.message_user(
                request,
                _("Invoice %(number)s finalized: %(gross)s, due %(due)s.")
                % {
                    "number": done.display_number,
                    "gross": format_money(done.gross_total, done.currency),
                    "due": format_date(done.due_date),
                },
                messages.SUCCESS,
            )
            return self._back(done)
        lines = list(invoice.lines.all())
        totals = services.draft_totals(
            currency=invoice.currency,
            lines=[
                {
                    "description": ln.description,
                    "quantity": ln.quantity,
                    "unit_price": ln.unit_price,
                    "vat_category": ln.vat_category,
                    "vat_rate": ln.vat_rate,
                    "unit": ln.unit,
                }
                for ln in lines
            ],
        )
        return self._page(
            request,
            invoice,
            "finalize_confirm.html",
            title=_("Finalize %(invoice)s") % {"invoice": invoice},
            number=invoice.series.display_number(invoice.series.next_number),
            lines=len(lines),
            total=format_money(totals.gross, invoice.currency),
        )

    # --- void -------------------------------------------------------------------------

    def void_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: confirm with a reason; POST: void the invoice."""
        invoice = self._invoice(request, object_id)
        form = VoidForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.void_invoice(invoice, by=request.user, reason=form.cleaned_data["reason"])
            except BillingError as exc:
                _field_error(form, exc)
            else:
                self.message_user(
                    request,
                    _("Invoice %(number)s voided.") % {"number": invoice.display_number},
                    messages.SUCCESS,
                )
                return self._back(invoice)
        return self._page(
            request,
            invoice,
            "void_confirm.html",
            title=_("Void %(invoice)s") % {"invoice": invoice},
            form=form,
        )

    # --- credit -----------------------------------------------------------------------

    def credit_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: the credit form; POST "preview": the note it would be, naming its number;
        POST "confirm": issue it."""
        invoice = self._invoice(request, object_id)
        form = CreditForm(request.POST or None, invoice=invoice)
        preview = None
        if request.method == "POST" and form.is_valid():
            lines, amount = form.credit_lines(), form.cleaned_data.get("amount")
            reason = form.cleaned_data["reason"]
            if not form.errors:
                try:
                    if "confirm" in request.POST:
                        return self._issue_credit(request, invoice, lines, amount, reason)
                    if "back" not in request.POST:
                        preview = services.preview_credit_note(
                            invoice, lines=lines, amount=amount, reason=reason
                        )
                except BillingError as exc:
                    _field_error(form, exc, "amount" if amount is not None else None)
                    preview = None
        return self._page(
            request,
            invoice,
            "credit_confirm.html" if preview else "credit_form.html",
            title=_("Credit %(invoice)s") % {"invoice": invoice},
            form=form,
            preview=preview,
            preview_gross=format_money(preview.totals.gross, invoice.currency) if preview else "",
            preview_lines=[
                {
                    "description": ln.description,
                    "quantity": _quantity(ln.quantity),
                    "net": format_money(ln.net_amount, invoice.currency),
                }
                for ln in (preview.lines if preview else [])
            ],
        )

    def _issue_credit(
        self,
        request: HttpRequest,
        invoice: Invoice,
        lines: list[services.CreditLine] | None,
        amount: Money | None,
        reason: str,
    ) -> HttpResponse:
        if amount is not None:
            note = services.issue_credit_note_for_amount(
                invoice, amount=amount, by=request.user, reason=reason
            )
        else:
            note = services.issue_credit_note(invoice, by=request.user, lines=lines, reason=reason)
        self.message_user(
            request,
            _("Credit note %(note)s issued on %(number)s for %(gross)s.")
            % {
                "note": note.display_number,
                "number": invoice.display_number,
                "gross": format_money(note.gross_total, note.currency),
            },
            messages.SUCCESS,
        )
        return self._back(invoice)

    # --- draft: preview PDF and live totals -------------------------------------------

    def preview_pdf_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A draft as its PDF will look, unsigned and marked DRAFT across every page."""
        from billing.documents.render import render_draft_preview

        invoice = self._invoice(request, object_id, change=False)
        if not invoice.is_draft:
            raise Http404("Only a draft has a preview; a finalized invoice has its signed PDF")
        response = HttpResponse(render_draft_preview(invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="draft-{invoice.pk}-preview.pdf"'
        return response

    def totals_view(self, request: HttpRequest) -> HttpResponse:
        """The totals of the line editor's lines as typed (not saved): net, VAT per rate,
        total; or the first line that is wrong, naming its field."""
        if not (
            request.user.has_perm("billing.add_invoice") or request.user.has_perm(CHANGE_PERMISSION)
        ):
            raise PermissionDenied
        currency = request.POST.get("currency") or ""
        if not currency and request.POST.get("customer"):
            from billing.models import Customer

            customer = Customer.objects.filter(pk=request.POST["customer"]).first()
            currency = customer.currency if customer else ""
        lines = []
        for index in range(min(int(request.POST.get("lines-TOTAL_FORMS") or 0), 500)):
            prefix = f"lines-{index}-"
            if request.POST.get(prefix + "DELETE"):
                continue
            spec = {
                name: request.POST.get(prefix + name, "").strip()
                for name in ("description", "quantity", "unit_price", "vat_category", "vat_rate")
            }
            if not any(spec[n] for n in ("description", "quantity", "unit_price")):
                continue
            lines.append((index, spec))
        try:
            totals = services.draft_totals(
                currency=currency or "SEK",
                lines=[
                    {
                        **spec,
                        "quantity": _number(spec["quantity"], "quantity"),
                        "unit_price": _number(spec["unit_price"], "unit_price"),
                    }
                    for _index, spec in lines
                ],
            )
        except BillingError as exc:
            return JsonResponse({"error": str(exc), "field": exc.field})
        code = currency.upper() or "SEK"
        return JsonResponse(
            {
                "net": format_money(totals.net, code),
                "vat": format_money(totals.vat, code),
                "gross": format_money(totals.gross, code),
                "groups": [
                    f"{g.category} {format_decimal(g.rate)}%: {format_money(g.vat_amount, code)}"
                    for g in totals.breakdown
                ],
            }
        )


def _number(text: str, field: str) -> Decimal:
    try:
        return parse_decimal(text, translation.get_language() or "en")
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=field) from exc
