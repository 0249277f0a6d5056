"""Admin pages that weaken a control open only with a fresh second factor (step-up).

The services behind them refuse without one too (fail closed); this mixin sends the
staff member to confirm a factor *before* the form, so a form is never filled in for
nothing. Viewing (without the change permission) needs no step-up.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

from security.selectors import is_step_up_fresh


def step_up_redirect(request: HttpRequest) -> HttpResponse:
    """Send the staff member to confirm a second factor, then back to this page."""
    query = urlencode({"next": request.get_full_path()})
    return HttpResponseRedirect(f"{reverse('security:step_up')}?{query}")


class StepUpChangesMixin:
    """For a ModelAdmin: its add, change and delete pages need a fresh second factor from
    anyone who may change (not merely view) the object."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        may_change = self.has_change_permission(request) or self.has_add_permission(request)  # type: ignore[attr-defined]
        if may_change and not is_step_up_fresh(request):
            return step_up_redirect(request)
        return super().changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc]

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if self.has_delete_permission(request) and not is_step_up_fresh(request):  # type: ignore[attr-defined]
            return step_up_redirect(request)
        return super().delete_view(request, object_id, extra_context)  # type: ignore[misc]


class DecidedByActionsAdmin(admin.ModelAdmin):
    """A record nobody edits or adds or deletes by hand: every field read-only, no Save
    buttons, and ``save_model`` writes nothing. It changes only through the admin's
    actions, each calling its service (a security alert resolved, an erasure decided)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields or ()

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra = {"show_save": False, "show_save_and_continue": False, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        return None  # every field is read-only; no write outside the services
