"""The seller in the admin: one company profile per installation, saved through
``billing.services.update_company_profile``."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from billing import services
from billing.admin.base import ServiceAdmin, adopt, changed_values, known_values
from billing.models import CompanyProfile


@admin.register(CompanyProfile)
class CompanyProfileAdmin(ServiceAdmin):
    """One seller per installation: it can be added once, changed, never deleted."""

    list_display = ("legal_name", "organisation_number", "vat_number", "bankgiro", "iban")
    readonly_fields = ("updated_at",)
    fieldsets = (
        (None, {"fields": ("legal_name", "organisation_number", "vat_number", "logo")}),
        (
            "Address and contact",
            {
                "fields": (
                    "address_line1",
                    "address_line2",
                    "postal_code",
                    "city",
                    "country",
                    "email",
                    "phone",
                )
            },
        ),
        (
            "Payment and tax",
            {
                "fields": (
                    "bankgiro",
                    "iban",
                    "bic",
                    "f_skatt_text",
                    "default_payment_terms_days",
                    "customer_language",
                    "updated_at",
                )
            },
        ),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not CompanyProfile.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        profile = CompanyProfile.objects.only("pk").first()
        if profile is not None and self.has_view_or_change_permission(request, profile):
            return HttpResponseRedirect(
                reverse("admin:billing_companyprofile_change", args=[profile.pk])
            )
        return super().changelist_view(request, extra_context)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        fields = (
            changed_values(form, services.COMPANY_FIELDS)
            if change
            else known_values(form.cleaned_data, services.COMPANY_FIELDS)
        )
        if fields.get("logo") is False:  # the form's "clear" checkbox
            fields["logo"] = ""
        saved = services.update_company_profile(by=request.user, **fields)
        adopt(obj, saved)
