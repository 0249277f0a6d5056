"""Who calls the API: whose records the token sees, and who acts in the audit log."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.settings import api_settings

from billing.selectors import CustomerScope, api_scope

API_PERMISSIONS = list(api_settings.DEFAULT_PERMISSION_CLASSES)
"""The permissions every API view has (authenticated, its scopes); a view adds its own."""


def is_integration(request: Request) -> bool:
    """A server integration's client-credentials token: no user behind it."""
    token = request.auth
    return token is not None and getattr(token, "user_id", None) is None


def scope_of(request: Request) -> CustomerScope:
    """The token's ``CustomerScope`` (read once per request)."""
    cached = getattr(request, "_tillit_scope", None)
    if cached is None:
        cached = api_scope(request.user, integration=is_integration(request))
        request._tillit_scope = cached
    return cached


def actor_of(request: Request) -> Any:
    """Who the services record as acting: the token's user, or, for a server integration,
    its registered OAuth application (the audit log names the model and its id)."""
    if is_integration(request):
        return request.auth.application
    return request.user


class IntegrationOnly(BasePermission):
    """The view's ``integration_only`` actions take a client-credentials token: a customer
    user's token, whatever its scopes, is refused (403)."""

    message = "only a server integration (client-credentials token) may do this"

    def has_permission(self, request: Request, view: Any) -> bool:
        name = getattr(view, "action", None)
        return name not in getattr(view, "integration_only", ()) or is_integration(request)
