"""What every billing admin shares: writes go through ``billing.services``, never the ORM.

The admin never writes a row itself. Adding and changing go through
``billing.services`` (``save_model``, ``save_formset``, ``delete_model``), so an
admin edit gets the same checks, locks and audit events as any other path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from billing.admin_format import format_money
from billing.exceptions import BillingError


def adopt(target: Any, saved: Any) -> None:
    """Copy a service's saved row onto the admin's instance, which the admin keeps using."""
    for field in saved._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db


def changed_values(form: forms.ModelForm[Any], allowed: Sequence[str]) -> dict[str, Any]:
    return {
        name: form.cleaned_data[name]
        for name in form.changed_data
        if name in allowed and name in form.cleaned_data
    }


class ServiceAdmin(admin.ModelAdmin):
    """Base for billing admins: a service's refusal becomes a message, and nothing changes.

    The admin wraps each add/change in one transaction; a ``BillingError`` raised
    by a service inside it rolls the whole request back, and the staff member is
    sent back to the form with the rule that was broken.
    """

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except BillingError as exc:
            self.message_user(request, f"Nothing was saved. {exc}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except BillingError as exc:
            self.message_user(request, f"Nothing was deleted. {exc}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # The built-in bulk delete is a queryset delete that skips the services.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


def known_values(values: dict[str, Any], allowed: Sequence[str]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if name in allowed}


__all__ = ["ServiceAdmin", "adopt", "changed_values", "format_money", "known_values"]
