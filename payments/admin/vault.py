"""The vault in the admin: saved cards and the key status page, read-only. No page here
shows more than brand and last 4."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from audit.admin import ReadOnlyAdmin
from payments.vault.models import DataKey, PaymentMethod
from payments.vault.selectors import get_key_status


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "brand",
        "last4",
        "expiry",
        "fingerprint_prefix",
        "customer",
        "status",
        "created_at",
    ]
    list_filter = ["brand", "status"]
    list_select_related = ["customer"]
    search_fields = ["last4", "customer__name"]
    # Never the token or the full fingerprint (the ciphertext is not in this table).
    fields = readonly_fields = (
        "brand",
        "last4",
        "expiry",
        "fingerprint_prefix",
        "customer",
        "status",
        "created_at",
        "deleted_at",
    )

    @admin.display(description="expiry")
    def expiry(self, obj: PaymentMethod) -> str:
        return obj.expiry

    @admin.display(description="fingerprint")
    def fingerprint_prefix(self, obj: PaymentMethod) -> str:
        return f"{obj.fingerprint_prefix}…"

    # No data key: the card's secret (and the key sealing it) is the vault role's to read;
    # the key status page counts the records per key.
    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).defer("token")


@admin.register(DataKey)
class KeyStatusAdmin(ReadOnlyAdmin):
    """The vault key status page, for holders of payments.view_key_status."""

    change_list_template = "admin/payments/key_status.html"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("payments.view_key_status") and obj is None

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Vault key status",
            "opts": self.model._meta,
            "status": get_key_status(),
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.change_list_template, context)
