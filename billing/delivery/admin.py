"""Staff admin for delivery: customers' PGP keys (uploaded through a service, fingerprint
and expiry shown), deliveries with every attempt, and a retry action for failed ones."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.admin import ReadOnlyAdmin
from billing.delivery import services
from billing.delivery.exceptions import DeliveryError
from billing.delivery.models import CustomerPgpKey, Delivery, DeliveryAttempt
from billing.models import Customer


class PgpKeyUploadForm(forms.ModelForm):
    armored_key = forms.CharField(
        label="Public key",
        widget=forms.Textarea(attrs={"rows": 12, "cols": 80}),
        help_text="ASCII-armored OpenPGP public key (-----BEGIN PGP PUBLIC KEY BLOCK-----).",
    )

    class Meta:
        model = CustomerPgpKey
        fields = ("customer",)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        from django.utils import timezone

        from billing.delivery import pgp

        if cleaned.get("armored_key"):
            try:
                self.pgp_info = pgp.inspect_public_key(cleaned["armored_key"], now=timezone.now())
            except DeliveryError as exc:
                self.add_error("armored_key", exc.message)
        return cleaned


@admin.register(CustomerPgpKey)
class CustomerPgpKeyAdmin(admin.ModelAdmin):
    list_display = ("customer", "fingerprint", "expires_at", "uploaded_at", "uploaded_by")
    search_fields = ("customer__name", "fingerprint", "user_ids")
    readonly_fields = ("fingerprint", "user_ids", "expires_at", "uploaded_at", "uploaded_by")
    form = PgpKeyUploadForm

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:  # a stored key is replaced by uploading a new one, never edited
            return ("customer", *self.readonly_fields)
        return ("customer", "armored_key")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        customer: Customer = form.cleaned_data["customer"]
        saved = services.set_customer_pgp_key(
            customer, armored_key=form.cleaned_data["armored_key"], by=request.user
        )
        obj.pk = saved.pk
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.remove_customer_pgp_key(obj.customer, by=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for key in queryset.select_related("customer"):
            services.remove_customer_pgp_key(key.customer, by=request.user)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "finished_at", "succeeded", "error")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("invoice", "kind", "channel", "recipient", "status", "attempts", "sent_at")
    list_filter = ("status", "channel", "kind")
    search_fields = ("invoice__display_number", "recipient")
    list_select_related = ("invoice",)
    readonly_fields = (
        "invoice",
        "document",
        "kind",
        "channel",
        "recipient",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_error",
        "created_at",
    )
    inlines = [DeliveryAttemptInline]
    actions = ["retry_failed"]

    @admin.action(description="Retry the selected failed deliveries", permissions=["view"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        retried = 0
        for delivery in queryset.filter(status=Delivery.Status.FAILED):
            try:
                services.retry_delivery(delivery, by=request.user)
            except DeliveryError as exc:
                self.message_user(request, f"{delivery}: {exc.message}", messages.ERROR)
            else:
                retried += 1
        self.message_user(request, f"{retried} deliveries queued again.")
