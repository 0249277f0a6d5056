"""Customers and their portal users in the admin, saved through ``billing.services``."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from billing import services
from billing.admin.base import ServiceAdmin, adopt, changed_values, known_values
from billing.models import Customer, PortalAccount
from billing.privacy.admin import record_erasure_request


@admin.register(Customer)
class CustomerAdmin(ServiceAdmin):
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
