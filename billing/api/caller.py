"""Who calls the API (``security.api.principal``): whose records the token sees, and the
permission that keeps the seller's actions to server integrations."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from billing.selectors import CustomerScope, api_scope
from security.api.principal import actor_of, principal_of

__all__ = ["IntegrationOnly", "actor_of", "is_integration", "scope_of"]


def is_integration(request: Request) -> bool:
    """A server integration's client-credentials token (it acts as its integration account)."""
    return principal_of(request).kind == "integration"


def scope_of(request: Request) -> CustomerScope:
    """The token's ``CustomerScope`` (read once per request)."""
    cached = getattr(request, "_tillit_scope", None)
    if cached is None:
        principal = principal_of(request)
        cached = api_scope(principal.user, integration=principal.kind == "integration")
        request._tillit_scope = cached
    return cached


class IntegrationOnly(BasePermission):
    """The view's ``integration_only`` actions take a client-credentials token: a customer
    user's token, whatever its scopes, is refused (403)."""

    message = "only a server integration (client-credentials token) may do this"

    def has_permission(self, request: Request, view: Any) -> bool:
        name = getattr(view, "action", None)
        return name not in getattr(view, "integration_only", ()) or is_integration(request)
