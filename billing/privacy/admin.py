"""Erasure requests in the admin: a security officer approves (the customer is erased at
once) or rejects them, with a fresh second factor; nothing is edited by hand."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import translation
from django.utils.http import urlencode

from billing.models import Customer
from billing.privacy import services
from billing.privacy.models import ErasureRequest
from security.admin_mixins import DecidedByActionsAdmin
from security.exceptions import StepUpRequired


@admin.action(
    description="Record an erasure request (the customer asked us; second factor)",
    permissions=["change"],
)
def record_erasure_request(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Customer]
) -> HttpResponse | None:
    """For the customers' admin: a clerk records a request a customer made by mail or
    phone; a security officer decides it on the erasure requests page."""
    recorded = 0
    for customer in queryset:
        try:
            services.request_erasure(customer=customer, by=request.user, request=request)
        except StepUpRequired:
            back = reverse("admin:billing_customer_changelist")
            return HttpResponseRedirect(
                f"{reverse('security:step_up')}?{urlencode({'next': back})}"
            )
        except services.PrivacyError as exc:
            modeladmin.message_user(request, f"{customer}: {exc}", messages.ERROR)
        else:
            recorded += 1
    if recorded:
        modeladmin.message_user(
            request,
            f"{recorded} erasure request(s) recorded: a security officer decides them.",
            messages.SUCCESS,
        )
    return None


@admin.register(ErasureRequest)
class ErasureRequestAdmin(DecidedByActionsAdmin):
    list_display = ("customer", "status", "requested_at", "decided_by", "decided_at")
    list_filter = ("status",)
    fields = (
        "customer",
        "status",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
        "decision_note",
        "pseudonym",
        "summary",
    )
    actions = ("approve", "reject")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        with translation.override("en"):  # the admin speaks English
            retention = services.retention_table()
        extra = {"retention": retention, **(extra_context or {})}
        return super().changelist_view(request, extra)

    def _decide(
        self, request: HttpRequest, queryset: QuerySet[ErasureRequest], *, approve: bool
    ) -> HttpResponse | None:
        done = 0
        for erasure in queryset.filter(status=ErasureRequest.Status.PENDING):
            try:
                services.decide_erasure(erasure, approve=approve, by=request.user, request=request)
            except StepUpRequired:
                back = reverse("admin:privacy_erasurerequest_changelist")
                query = urlencode({"next": back})
                return HttpResponseRedirect(f"{reverse('security:step_up')}?{query}")
            except services.PrivacyError as exc:
                self.message_user(request, f"{erasure}: {exc}", messages.ERROR)
            else:
                done += 1
        if done:
            verb = "erased" if approve else "rejected"
            self.message_user(request, f"{done} request(s) {verb}.", messages.SUCCESS)
        return None

    @admin.action(description="Approve: erase the customer (second factor)", permissions=["change"])
    def approve(self, request: HttpRequest, queryset: QuerySet[ErasureRequest]) -> Any:
        return self._decide(request, queryset, approve=True)

    @admin.action(description="Reject the request", permissions=["change"])
    def reject(self, request: HttpRequest, queryset: QuerySet[ErasureRequest]) -> Any:
        return self._decide(request, queryset, approve=False)
