"""The consent page of the authorization-code flow: django-oauth-toolkit's view with the
portal's sign-in in front of it (and, through security.middleware, the customer's second
factor when they have one), the portal's look, translated scope descriptions, staff
refused (they act in the admin only) and each decision audited."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase
from django.utils.translation import gettext as _
from oauth2_provider.views import AuthorizationView

from audit import record
from security.api.scopes import describe
from security.selectors import is_staff_account


class ConsentView(AuthorizationView):
    template_name = "security/oauth_authorize.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.user.is_authenticated and is_staff_account(request.user):
            raise PermissionDenied(_("Staff accounts cannot give apps access."))
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        scopes = context.get("scopes") or []
        context["scopes_descriptions"] = [describe(scope) for scope in scopes]
        context["title"] = _("Give an app access")
        return context

    def form_valid(self, form: Any) -> HttpResponseBase:
        response = super().form_valid(form)
        application = getattr(form, "cleaned_data", {}).get("client_id")
        allowed = bool(form.cleaned_data.get("allow"))
        record(
            "api.consent_given" if allowed else "api.consent_refused",
            actor=self.request.user,
            request=self.request,
            client_id=str(application or ""),
            scopes=str(form.cleaned_data.get("scope", "")),
        )
        return response
