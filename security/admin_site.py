"""The admin site: staff only, and only after a second factor in this session."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.http import urlencode
from django.views.generic import RedirectView


class TillitAdminSite(admin.AdminSite):
    """Like django-otp's OTPAdminSite: a staff user whose session has not verified a
    second factor is treated as if they were not staff. Every admin page, change
    view and action goes through ``has_permission``; the login page is ours, so
    the user is walked through verification (or enrollment on first login).
    """

    site_header = "Tillit administration"
    site_title = "Tillit admin"

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        is_verified = getattr(user, "is_verified", None)
        return super().has_permission(request) and callable(is_verified) and is_verified()

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        """Every admin page shows the open security alerts to those who may read them."""
        context = super().each_context(request)
        user = request.user
        if getattr(user, "is_staff", False) and user.has_perm("security.view_securityalert"):
            from security.selectors import open_security_alerts

            context["security_alerts"] = open_security_alerts()
        return context

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        """The admin home: the dashboards of the signed-in staff member's roles, then the
        tables they may open (``security.admin_dashboard``)."""
        from security.admin_dashboard import panels_for

        return super().index(request, {"dashboard": panels_for(request), **(extra_context or {})})

    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        next_url = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        return HttpResponseRedirect(f"{reverse('security:login')}?{urlencode({'next': next_url})}")

    def get_urls(self) -> list[URLPattern | URLResolver]:
        """The header's "change password" goes to our own page: it runs
        ``security.services.change_password`` (history, other sessions ended, audited),
        which Django's admin view would skip."""
        ours = RedirectView.as_view(pattern_name="security:password_change")
        return [
            path("password_change/", ours, name="password_change"),
            *(u for u in super().get_urls() if getattr(u, "name", "") != "password_change"),
        ]
