"""Customers and their portal users in the admin, saved through ``billing.services``."""

from __future__ import annotations

from functools import cache
from typing import Any

import pycountry
from django import forms
from django.contrib import admin
from django.http import HttpRequest

from billing import services
from billing.admin.base import ServiceAdmin, adopt, changed_values, known_values
from billing.exceptions import InvalidInput
from billing.models import Customer, PortalAccount
from billing.money import invoice_currency
from billing.privacy.admin import record_erasure_request
from billing.selectors import get_company_profile


@cache
def country_choices() -> list[tuple[str, str]]:
    """ISO 3166 countries by name (pycountry), as a select offers them."""
    return sorted(
        ((c.alpha_2, f"{c.name} ({c.alpha_2})") for c in pycountry.countries), key=lambda c: c[1]
    )


@cache
def currency_choices() -> list[tuple[str, str]]:
    """The ISO 4217 currencies an invoice can be made out in (``invoice_currency``)."""
    choices = []
    for currency in pycountry.currencies:
        try:
            code = invoice_currency(currency.alpha_3)
        except InvalidInput:
            continue
        choices.append((code, f"{code}: {currency.name}"))
    return sorted(choices)


class CustomerForm(forms.ModelForm):
    """Country and currency from the ISO lists, as selects: no free text to mistype."""

    country = forms.ChoiceField(choices=country_choices, initial="SE")
    currency = forms.ChoiceField(choices=currency_choices, initial="SEK")

    class Meta:
        model = Customer
        fields = services.CUSTOMER_FIELDS


@admin.register(Customer)
class CustomerAdmin(ServiceAdmin):
    form = CustomerForm
    list_display = ("name", "kind", "identity_number", "vat_id", "email", "country", "currency")
    list_filter = ("kind", "country", "currency", "language")
    search_fields = ("name", "identity_number", "email", "vat_id")
    readonly_fields = ("created_at", "updated_at")
    date_hierarchy = "created_at"
    actions = (record_erasure_request,)
    fieldsets = (
        (None, {"fields": ("name", "kind", "identity_number", "vat_id", "email")}),
        (
            "Billing address",
            {"fields": ("address_line1", "address_line2", "postal_code", "city", "country")},
        ),
        (
            "Preferences",
            {"fields": ("language", "currency", "payment_terms_days", "created_at", "updated_at")},
        ),
    )

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        """A new customer speaks the company's default language (its profile says which)."""
        initial = super().get_changeform_initial_data(request)
        profile = get_company_profile()
        if profile is not None:
            initial.setdefault("language", profile.customer_language)
        return initial

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Customers carry invoices kept for the bookkeeping period; erasure is a
        # privacy service (pseudonymization), not a delete.
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            saved = services.update_customer(
                obj, by=request.user, **changed_values(form, services.CUSTOMER_FIELDS)
            )
        else:
            saved = services.create_customer(
                by=request.user, **known_values(form.cleaned_data, services.CUSTOMER_FIELDS)
            )
        adopt(obj, saved)


@admin.register(PortalAccount)
class PortalAccountAdmin(ServiceAdmin):
    """Which user sees which customer's invoices in the portal: linked, never edited here."""

    list_display = ("user", "customer", "created_at")
    list_select_related = ("user", "customer")
    search_fields = ("user__username", "user__email", "customer__name")
    autocomplete_fields = ("customer",)
    raw_id_fields = ("user",)
    readonly_fields = ("created_at",)
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is not None:
            return ("user", "customer", "created_at")
        return ("created_at",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        saved = services.link_portal_account(
            user=form.cleaned_data["user"], customer=form.cleaned_data["customer"], by=request.user
        )
        adopt(obj, saved)
