"""The consent page of the authorization-code flow: django-oauth-toolkit's view with the
portal's sign-in in front of it (and, through security.middleware, the customer's second
factor when they have one), the portal's look, translated scope descriptions, staff
refused (they act in the admin only) and each decision audited.

Step-up (decision 74, RFC 9470): the grant keeps when the customer last confirmed a second
factor in this session, and its tokens carry it. A client told by the API that a token's
second factor is too old (401 ``insufficient_user_authentication`` with ``max_age``) sends
the customer here with ``max_age=<seconds>``: a customer with a second factor whose last
confirmation is older than that confirms it again (the portal's step-up page) first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from oauth2_provider.views import AuthorizationView

from audit import record
from security.api.oauth import CONSENT_AUTHENTICATED, CONSENT_SECOND_FACTOR
from security.api.scopes import describe
from security.selectors import (
    has_second_factor,
    is_staff_account,
    session_second_factor_at,
    session_started_at,
)

# A max_age below this is read as this: a confirmation made a moment ago must count, or
# max_age=0 would send the customer back to the step-up page for ever.
MIN_MAX_AGE_SECONDS = 60


def _max_age(request: HttpRequest) -> int | None:
    raw = request.GET.get("max_age", "")
    if not (raw.isascii() and raw.isdigit() and len(raw) < 10):
        return None
    return max(int(raw), MIN_MAX_AGE_SECONDS)


def needs_fresh_second_factor(request: HttpRequest) -> bool:
    """Whether this authorization request asks (``max_age``) for a second factor fresher
    than the session's, from a customer who has one."""
    max_age = _max_age(request)
    if max_age is None or not request.user.is_authenticated:
        return False
    if not has_second_factor(user=request.user):
        return False
    verified_at = session_second_factor_at(request)
    return verified_at is None or timezone.now().timestamp() - verified_at > max_age


def _utc(timestamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, tz=UTC) if timestamp is not None else None


class ConsentView(AuthorizationView):
    template_name = "security/oauth_authorize.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.user.is_authenticated and is_staff_account(request.user):
            raise PermissionDenied(_("Staff accounts cannot give apps access."))
        if request.method == "GET" and needs_fresh_second_factor(request):
            step_up = reverse("security:step_up")
            return HttpResponseRedirect(f"{step_up}?{urlencode({'next': request.get_full_path()})}")
        return super().dispatch(request, *args, **kwargs)

    def create_authorization_response(
        self, request: HttpRequest, scopes: str, credentials: dict[str, Any], allow: bool
    ) -> Any:
        verified_at = session_second_factor_at(request)
        started_at = session_started_at(request)
        # Always set (None without one), kept on the grant by security.api.oauth: the last
        # time this session proved who the customer is, and its last second factor.
        last = max((t for t in (started_at, verified_at) if t is not None), default=None)
        credentials[CONSENT_AUTHENTICATED] = _utc(last)
        credentials[CONSENT_SECOND_FACTOR] = _utc(verified_at)
        return super().create_authorization_response(request, scopes, credentials, allow)

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
