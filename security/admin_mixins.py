"""Admin pages that weaken a control open only with a fresh second factor (step-up).

The services behind them refuse without one too (fail closed); this mixin sends the
staff member to confirm a factor *before* the form, so a form is never filled in for
nothing. Viewing (without the change permission) needs no step-up.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

from security.selectors import is_step_up_fresh


def _to_step_up(request: HttpRequest) -> HttpResponse:
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
            return _to_step_up(request)
        return super().changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc]

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if self.has_delete_permission(request) and not is_step_up_fresh(request):  # type: ignore[attr-defined]
            return _to_step_up(request)
        return super().delete_view(request, object_id, extra_context)  # type: ignore[misc]
