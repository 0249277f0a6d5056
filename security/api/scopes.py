"""The API's scopes, one per resource and action (``OAUTH2_PROVIDER["SCOPES"]`` names and
explains them; docs/api.md has the table), and which an application may be granted.

``openid``, ``profile`` and ``email`` are OpenID Connect's and only make sense for a token
that acts for a person (authorization code). The rest are ``<resource>:<action>``; a
``write`` scope never implies the matching ``read`` one.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from oauth2_provider.scopes import SettingsScopes

from security.services.clients import OIDC_SCOPES, all_scopes


def allowed_scopes_of(application: Any) -> list[str]:
    """The scopes a registered client may be granted (none for an unregistered one)."""
    from security.models import ApiClient

    try:
        allowed = application.tillit_client.allowed_scopes
    except ApiClient.DoesNotExist:
        return []
    known = all_scopes()
    return [scope for scope in allowed if scope in known]


class ClientScopes(SettingsScopes):
    """django-oauth-toolkit's scopes backend: each client may be granted only the scopes the
    security officer allowed it; asking for none gives all of them but OpenID Connect's."""

    def get_available_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        if application is None:
            return sorted(all_scopes())
        return allowed_scopes_of(application)

    def get_default_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        if application is None:
            return []
        return [s for s in allowed_scopes_of(application) if s not in OIDC_SCOPES]


# What the consent page tells a customer each scope allows (translated).
SCOPE_DESCRIPTIONS = {
    "openid": _("Sign you in to the app with your Tillit account"),
    "profile": _("See your name"),
    "email": _("See your e-mail address"),
    "customers:read": _("See your company's details"),
    "invoices:read": _("See your invoices and download their documents"),
    "invoices:write": _("Create, finalize, void and credit invoices"),
    "payments:read": _("See your payments and refunds"),
    "payments:write": _("Pay invoices with your saved cards"),
    "payment_methods:read": _("See your saved cards (brand, last four digits, expiry)"),
    "payment_methods:write": _("Save and delete cards"),
    "events:read": _("See what happens on your account"),
}


def describe(scope: str) -> str:
    """The consent page's sentence for a scope."""
    return str(SCOPE_DESCRIPTIONS.get(scope, scope))
